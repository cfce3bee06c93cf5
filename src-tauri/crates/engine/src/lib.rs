//! Switchboard's engine: everything the app does that is worth testing
//! without a window. The Tauri crate is a thin shell over it, and the
//! headless CLI uses it directly, so this crate never depends on Tauri.
//!
//! Main types:
//! - [`DataDir`]: where Switchboard keeps its files (`SWITCHBOARD_HOME`, or the
//!   OS data directory); [`Config`]: its validated `config.toml`.
//! - [`KeyStore`] and [`Secret`]: provider keys in the OS keychain, held in
//!   memory as a type that never prints.
//! - [`ProviderConfig`]: one provider (a wire protocol plus configuration);
//!   [`Client`]: sends a [`ChatRequest`] and streams [`Timed`]
//!   [`StreamEvent`]s back; [`Accumulator`]: turns them into one
//!   [`AttemptResult`] with usage, timings and cost.
//! - [`Catalog`]: models and prices, and what each model takes besides
//!   text; [`Price`] and [`Cost`]: exact money.
//! - [`Attachment`]: an image or PDF in a prompt, typed from its bytes,
//!   stored once by its SHA-256, counted in tokens by each vendor's rule
//!   and checked against what a target takes before sending ([`attach`]).
//! - [`ProviderError`] with an [`ErrorKind`]: every failure, classified,
//!   with the wait the provider asked for; [`redact`]: keys kept out of
//!   errors and `Debug` output.
//! - [`routing::Router`]: runs a request through a named route of targets
//!   (fallbacks, retries, cooldowns, policy, budget checks) and returns
//!   every attempt in order; a cancellation token stops it, and a stopped
//!   attempt settles like any other ([`run_attempt_until`]).
//! - [`Store`]: the SQLite database (history with full-text search, the
//!   spend ledger behind [`SqliteBudgetGate`], provider health in
//!   [`SqliteHealth`]); [`Recorder`] writes a conversation as it happens,
//!   and what a crashed process left in flight is settled when the next
//!   store opens ([`Store::recover`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use switchboard_engine::{Accumulator, ChatRequest, Client, Config, DataDir, KeyStore};
//! let dir = DataDir::resolve()?;
//! let config = Config::load(&dir.config_file())?;
//! let provider = config.provider("openai").ok_or("unknown provider")?;
//! let key = KeyStore::new().get("openai")?.map(|(k, _)| k);
//! let request = ChatRequest::new("gpt-x", "Hello!");
//! let mut stream = Client::new().stream(&provider, key.as_ref(), &request).await?;
//! let mut acc = Accumulator::new(&provider.id, &request.model);
//! while let Some(event) = stream.next().await {
//!     acc.push(&event);
//! }
//! let price = config.catalog().price(&provider, &request.model);
//! let result = acc.finish(stream.elapsed(), price.as_ref(), request.estimated_input_tokens(provider.kind));
//! # Ok(()) }
//! ```

pub mod attach;
mod attempt;
pub mod budgets;
pub mod catalog;
mod chat;
mod client;
mod config;
mod error;
pub mod hooks;
pub mod import;
mod keys;
mod money;
mod paths;
pub mod provider;
pub mod redact;
pub mod routing;
mod runner;
pub mod service;
pub mod settings;
pub mod sse;
pub mod store;

pub use attach::{Accepts, Attachment, AttachmentError, AttachmentLimits, MediaKind, MediaType};
pub use attempt::{Accumulator, attempt_cost, cost_of, estimate_cost, estimate_tokens};
pub use catalog::{Catalog, ModelInfo, ModelPrice, PriceSource, PriceTier, Rates};
pub use chat::{
    AttemptCost, AttemptResult, ChatRequest, CostSource, DEFAULT_MAX_TOKENS, FinishReason, Message,
    Params, Role, StreamEvent, Timing, Usage,
};
pub use client::{ChatStream, Client, Timed};
pub use config::{
    Budget, BudgetPeriod, BudgetScope, Config, ConfigError, PaneLayout, Theme, UiSettings,
};
pub use error::{ErrorKind, MAX_RETRY_HINT, ProviderError, retry_hint};
pub use keys::{
    KeyError, KeyIndex, KeyListing, KeySource, KeyStore, Secret, env_var_for, key_hint,
    provider_key,
};
pub use money::{AmountError, Cost, Price};
pub use paths::{DataDir, DataDirError, HOME_ENV};
pub use provider::{ProviderConfig, ProviderKind};
pub use runner::{AttemptEvent, CHECKPOINT_EVERY, Timeouts, run_attempt, run_attempt_until};
pub use store::{
    ConversationId, MessageId, Recorder, Recovered, SqliteBudgetGate, SqliteHealth, Store,
    StoreError,
};

/// The engine's version, shown by the app and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
