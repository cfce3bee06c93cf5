//! Provider keys for the Local API's requests come from the engine's
//! [`KeyCache`], the one the app's panes use: read from the keychain once
//! rather than per request, kept for a while, read again in the
//! background when old, and replaced when a provider refuses one that the
//! keychain has since changed (see there).

pub(crate) use switchboard_engine::KeyCache;
