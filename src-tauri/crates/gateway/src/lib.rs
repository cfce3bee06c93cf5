//! Switchboard's Local API: an HTTP endpoint on this machine that speaks
//! OpenAI Chat Completions and Anthropic Messages, so any tool that takes
//! a base URL uses Switchboard's keys, routes, policy, budgets, health and
//! spend ledger instead of keys of its own. `switchboard-cli serve` runs
//! it, and the desktop app starts and stops it from Settings; both run
//! this crate over the same data directory. It never depends on Tauri.
//!
//! Main types:
//! - [`Gateway`]: a running server ([`Gateway::start`], [`Gateway::stop`],
//!   [`Gateway::stats`]); [`GatewayOptions`]: where it listens and how
//!   large a request may be; [`LocalApiSettings`]: the `[local_api]` table
//!   of `config.toml` (port, start with the app).
//! - [`tokens`]: client tokens (made, listed, revoked; kept as hashes).
//! - [`LocalApi`]: the desktop app's switch: starts and stops a
//!   [`Gateway`], saves `[local_api]`, manages tokens, reports counters.
//!
//! How a request runs, and why it is built this way:
//! - Every request needs a client token (`Authorization: Bearer` or
//!   `x-api-key`), checked against hashes in constant time. A non-loopback
//!   bind refuses to start without one. No CORS headers are ever sent, so
//!   a web page cannot read answers; a body over the limit is refused.
//! - `model` is resolved by the engine's own target resolution
//!   (`provider:model`, `@route`), plus a bare model id that exactly one
//!   provider's catalog knows; `models: [...]` is a fallback chain. The
//!   request then runs through the engine's [`Router`] with the same
//!   catalog, policy, budgets and health as the app: this crate only
//!   translates wire formats and maps outcomes to status codes.
//! - A whole answer's request is a future the HTTP exchange drives itself
//!   (no task hop); a streamed one runs on a task of its own, so the
//!   upstream is parsed while the response writes. Either way pieces are
//!   encoded into the response's buffer as the router reports them (no
//!   channel, no allocation per piece) and everything ready leaves in one
//!   write.
//!   A streamed answer's headers go out with its first token, when the
//!   serving target is known and no fallback can happen any more; a
//!   client that goes away cancels the request's token, the request goes
//!   on by itself and the attempt settles as `stopped` like any other.
//! - Ledger, holds and health go through one [`BatchWriter`] per server
//!   (group commit), so hundreds of concurrent streams share one
//!   transaction per batch instead of several fsyncs per request. An
//!   attempt no hard budget covers goes upstream without waiting for its
//!   hold's commit; the response's first byte waits for it (so a crash
//!   after any byte reached the client leaves a row that recovery finds),
//!   and the settle is written after the response is out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_engine::{DataDir, KeyStore};
//! use switchboard_gateway::{Gateway, GatewayOptions};
//! let gateway = Gateway::start(DataDir::resolve()?, KeyStore::new(), GatewayOptions::default()).await?;
//! println!("point your SDK at {}", gateway.base_url());
//! gateway.stop(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! [`Router`]: switchboard_engine::routing::Router
//! [`BatchWriter`]: switchboard_engine::store::BatchWriter

mod anthropic;
mod auth;
mod body;
mod errors;
mod keys;
mod local_api;
mod models;
mod openai;
mod resolve;
mod run;
mod server;
mod settings;
mod state;
pub mod tokens;
mod wire;

pub use local_api::{LocalApi, LocalApiError};
pub use server::{DEFAULT_MAX_BODY, DEFAULT_PORT, Gateway, GatewayError, GatewayOptions};
pub use settings::LocalApiSettings;
pub use state::GatewayStats;
