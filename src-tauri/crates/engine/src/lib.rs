//! Switchboard's engine: everything the app does that is worth testing
//! without a window. The Tauri crate is a thin shell over it, and the
//! headless CLI uses it directly, so this crate never depends on Tauri.
//!
//! Main types:
//! - [`DataDir`]: where Switchboard keeps its files (`SWITCHBOARD_HOME`, or the
//!   OS data directory).
//! - [`KeyStore`] and [`Secret`]: provider keys in the OS keychain, held in
//!   memory as a type that never prints.
//! - [`echo`]: the streaming round trip the app shell uses to prove the
//!   UI → Rust → UI path.
//!
//! ```no_run
//! use switchboard_engine::{DataDir, KeyStore};
//! let dir = DataDir::resolve()?;
//! let keys = KeyStore::new();
//! let openai = keys.get("openai")?; // keychain, then SWITCHBOARD_KEY_OPENAI
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod echo;
mod keys;
mod paths;

pub use keys::{KeyError, KeySource, KeyStore, Secret, env_var_for};
pub use paths::{DataDir, DataDirError, HOME_ENV};

/// The engine's version, shown by the app and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
