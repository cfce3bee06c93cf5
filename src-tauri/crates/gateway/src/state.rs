//! What every request of a running Local API reads: the configuration in
//! force (a [`Generation`], replaced whole when `config.toml` changes on
//! disk), the client tokens, the key cache, the batch writer and the
//! counters the app shows.
//!
//! Config and tokens are re-read in the background (every
//! [`RELOAD_EVERY`]): an edit made by the app or another CLI applies to
//! the next requests without a restart, and a revoked token stops working
//! within that time. A config that no longer loads leaves the previous
//! one in force and is reported in [`GatewayStats::config_problem`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use switchboard_engine::routing::{RouteOutcome, Router, RoutingConfig};
use switchboard_engine::store::{BatchWriter, CachedHealth, ClientToken, period_start};
use switchboard_engine::{
    Budget, BudgetPeriod, Client, Config, ConfigError, Cost, DataDir, KeyStore, Store, StoreError,
};
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::keys::KeyCache;

/// How often config.toml and the tokens are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// One loaded configuration and the router built over it.
#[derive(Debug)]
pub(crate) struct Generation {
    pub config: Config,
    pub routing: RoutingConfig,
    pub budgets: Vec<Budget>,
    pub router: Router,
    /// Model id → the provider ids whose catalog has it, for bare `model`
    /// names.
    pub model_index: HashMap<String, Vec<String>>,
    /// Every `provider:model` the catalog knows and every `@route`: what
    /// an unknown model's error suggests from.
    pub labels: Vec<String>,
    /// `GET /v1/models` in OpenAI's shape and in Anthropic's.
    models: [Bytes; 2],
    /// The file's modification time and size when read.
    stamp: Option<(SystemTime, u64)>,
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Generation {
    /// Load `dir`'s config.toml and build the router over it.
    pub(crate) fn load(
        dir: &DataDir,
        client: &Client,
        health: &Arc<CachedHealth>,
        writer: &BatchWriter,
        keys: &Arc<KeyCache>,
    ) -> Result<Self, ConfigError> {
        let path = dir.config_file();
        let stamp = stamp(&path);
        let config = Config::load(&path)?;
        let routing = RoutingConfig::from_config(&config)?;
        let budgets = config.budget_list()?;
        let mut catalog = config.catalog();
        catalog.load_live_cache(&dir.path().join("cache").join("models"));
        let mut model_index: HashMap<String, Vec<String>> = HashMap::new();
        let mut labels: Vec<String> = routing.routes.keys().map(|r| format!("@{r}")).collect();
        for provider in providers(&config) {
            for m in catalog.models(&provider) {
                labels.push(format!("{}:{}", provider.id, m.id));
                model_index
                    .entry(m.id)
                    .or_default()
                    .push(provider.id.clone());
            }
        }
        let models = [false, true].map(|anthropic| {
            Bytes::from(crate::models::list(&config, &catalog, &routing, anthropic))
        });
        let router = Router::new(
            catalog,
            Arc::clone(health) as _,
            Arc::new(writer.gate(budgets.clone())),
            Arc::clone(keys) as _,
        )
        .with_policy(routing.policy.clone())
        .with_client(client.clone());
        Ok(Self {
            config,
            routing,
            budgets,
            router,
            model_index,
            labels,
            models,
            stamp,
        })
    }

    /// The body of `GET /v1/models` (Anthropic's shape or OpenAI's).
    pub(crate) fn models(&self, anthropic: bool) -> Bytes {
        self.models[usize::from(anthropic)].clone()
    }
}

/// Every provider a request may name: configured ones, then the presets
/// not configured (disabled ones left out).
pub(crate) fn providers(config: &Config) -> Vec<switchboard_engine::ProviderConfig> {
    let mut ids: Vec<String> = config.providers.keys().cloned().collect();
    ids.extend(
        switchboard_engine::provider::presets()
            .keys()
            .filter(|k| {
                *k != "custom"
                    && !config.providers.contains_key(*k)
                    && !config.disabled.contains_key(*k)
            })
            .cloned(),
    );
    ids.iter().filter_map(|id| config.provider(id)).collect()
}

/// The Local API's counters, as the app shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayStats {
    /// Requests answered since it started (any status).
    pub requests: u64,
    /// Of which answered with an error (any status from 400, or a stream
    /// that ended in an error).
    pub errors: u64,
    /// Requests running right now.
    pub in_flight: u64,
    /// What its requests cost today (UTC), exactly; estimated parts included.
    pub spend_today: Cost,
    /// Live client tokens.
    pub tokens: usize,
    /// Why config.toml was not reloaded (the previous one stays in force).
    pub config_problem: Option<String>,
}

/// The counters behind [`GatewayStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    /// (start of the UTC day it counts, amount).
    spend: Mutex<(i64, Cost)>,
}

/// Counts a request as running for as long as it lives.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Counters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A response went out (`failed`: with an error).
    pub(crate) fn answered(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A streamed answer ended in an error after its response began.
    pub(crate) fn stream_failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A request settled: add what it cost to today's spend.
    pub(crate) fn settled(&self, outcome: &RouteOutcome) {
        let Some(cost) = outcome.cost() else {
            return;
        };
        let today = period_start(
            BudgetPeriod::Daily,
            switchboard_engine::routing::now_unix_ms(),
        );
        if let Ok(mut spend) = self.spend.lock() {
            if spend.0 != today {
                *spend = (today, Cost::ZERO);
            }
            spend.1 = spend.1 + cost.total;
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Everything a running Local API shares.
#[derive(Debug)]
pub(crate) struct State {
    pub dir: DataDir,
    pub store: Store,
    pub writer: BatchWriter,
    pub health: Arc<CachedHealth>,
    pub keys: Arc<KeyCache>,
    pub client: Client,
    pub tokens: Tokens,
    pub stats: Arc<Counters>,
    pub max_body: usize,
    /// Parent of every request's token: cancelled when the server stops.
    pub shutdown: CancellationToken,
    generation: RwLock<Arc<Generation>>,
    config_problem: Mutex<Option<String>>,
}

impl State {
    pub(crate) fn new(
        dir: DataDir,
        keys: KeyStore,
        max_body: usize,
    ) -> Result<Arc<Self>, crate::GatewayError> {
        let store = Store::open(&dir)?;
        let keys = keys.with_index(store.key_index());
        let writer = store.batch_writer()?;
        let health = Arc::new(writer.health());
        let keys = Arc::new(KeyCache::new(keys));
        let client = Client::new();
        let generation = Generation::load(&dir, &client, &health, &writer, &keys)?;
        let tokens = Tokens::load(&store)?;
        Ok(Arc::new(Self {
            dir,
            store,
            writer,
            health,
            keys,
            client,
            tokens,
            stats: Arc::new(Counters::default()),
            max_body,
            shutdown: CancellationToken::new(),
            generation: RwLock::new(Arc::new(generation)),
            config_problem: Mutex::new(None),
        }))
    }

    /// The configuration in force.
    pub(crate) fn generation(&self) -> Arc<Generation> {
        self.generation
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// Re-read config.toml if it changed on disk (blocking: file reads).
    pub(crate) fn reload_config(&self) {
        let current = self.generation();
        if stamp(&self.dir.config_file()) == current.stamp {
            return;
        }
        let loaded = Generation::load(
            &self.dir,
            &self.client,
            &self.health,
            &self.writer,
            &self.keys,
        );
        let problem = match loaded {
            Ok(g) => {
                if let Ok(mut slot) = self.generation.write() {
                    *slot = Arc::new(g);
                }
                // Keys may have moved with the providers: look them up again.
                self.keys.clear();
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Ok(mut p) = self.config_problem.lock() {
            *p = problem;
        }
    }

    /// Re-read the tokens (blocking: a database read).
    pub(crate) fn reload_tokens(&self) -> Result<(), StoreError> {
        self.tokens.reload(&self.store)
    }

    /// A token was used: note it (at most once a minute per token).
    pub(crate) fn used(&self, token: &ClientToken) {
        if self.tokens.should_touch(token.id) {
            self.writer.touch_token(token.id);
        }
    }

    pub(crate) fn stats(&self) -> GatewayStats {
        let c = &self.stats;
        let today = period_start(
            BudgetPeriod::Daily,
            switchboard_engine::routing::now_unix_ms(),
        );
        GatewayStats {
            requests: c.requests.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            in_flight: c.in_flight(),
            spend_today: c
                .spend
                .lock()
                .map(|s| if s.0 == today { s.1 } else { Cost::ZERO })
                .unwrap_or(Cost::ZERO),
            tokens: self.tokens.count(),
            config_problem: self.config_problem.lock().ok().and_then(|p| p.clone()),
        }
    }
}

impl From<StoreError> for crate::GatewayError {
    fn from(e: StoreError) -> Self {
        crate::GatewayError::Store(e.to_string())
    }
}

impl From<ConfigError> for crate::GatewayError {
    fn from(e: ConfigError) -> Self {
        crate::GatewayError::Config(e.to_string())
    }
}
