//! Reading `[routes.<name>]` and `[policy]` out of `config.toml`.
//!
//! [`Config`] keeps these tables raw so the provider part of the config can
//! load without knowing about routing; this module turns them into typed
//! [`Route`]s and a [`Policy`], checking every value and locating every
//! error (file, line, field) through [`Config::error_at`]. Unknown keys are
//! warnings, as elsewhere in the config, but they are reported with their
//! line so a misspelt `retires = 3` does not go unnoticed.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Value;

use crate::chat::Params;
use crate::config::{Config, ConfigError};
use crate::money::Price;
use crate::provider::ProviderConfig;
use crate::runner::Timeouts;

use super::policy::Policy;

/// How a route orders its targets for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// As written: a fallback chain.
    Ordered,
    /// By the estimated cost of this request (catalog prices).
    Cheapest,
    /// By measured time to first token and tokens/s (recent history).
    Fastest,
    /// By a weighted mix of normalized cost and measured latency.
    Balanced,
}

impl Strategy {
    /// The name used in config files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Ordered => "ordered",
            Strategy::Cheapest => "cheapest",
            Strategy::Fastest => "fastest",
            Strategy::Balanced => "balanced",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Strategy::Ordered,
            Strategy::Cheapest,
            Strategy::Fastest,
            Strategy::Balanced,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Retries of one target and the waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Base of the exponential backoff (the first wait is about this).
    pub backoff: Duration,
    /// Longest wait before a retry, `Retry-After` included: a provider
    /// asking for longer is left for the next target instead.
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// When a failing target is skipped, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownSettings {
    /// Failures in a row that start a cooldown (LiteLLM's `allowed_fails`).
    pub after_failures: u32,
    /// The first cooldown; each further one in a row doubles it.
    pub base: Duration,
    /// The longest cooldown.
    pub max: Duration,
}

impl Default for CooldownSettings {
    fn default() -> Self {
        Self {
            after_failures: 3,
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

/// The weights of the `balanced` strategy (any non-negative scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of the estimated cost.
    pub cost: f64,
    /// Weight of the estimated time to a full answer.
    pub latency: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            cost: 0.5,
            latency: 0.5,
        }
    }
}

/// One target of a route, with its settings resolved (route defaults
/// applied).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTarget {
    /// The provider.
    pub provider: ProviderConfig,
    /// The model id at that provider.
    pub model: String,
    /// Parameters for this target; the request's own parameters win where
    /// it sets them.
    pub params: Params,
    /// The three timers of each attempt.
    pub timeouts: Timeouts,
    /// How many times a retryable failure is retried on this target.
    pub retries: u32,
}

impl RouteTarget {
    /// A target with the default settings.
    pub fn new(provider: ProviderConfig, model: impl Into<String>) -> Self {
        Self {
            provider,
            model: model.into(),
            params: Params::default(),
            timeouts: Timeouts::default(),
            retries: DEFAULT_RETRIES,
        }
    }

    /// `provider:model`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.provider.id, self.model)
    }
}

/// Retries per target when a route does not say.
pub const DEFAULT_RETRIES: u32 = 1;
/// Retries of a target named directly when `[retries]` does not say: what
/// the official OpenAI and Anthropic SDKs do.
pub const DEFAULT_DIRECT_RETRIES: u32 = 2;
/// The most retries per target a route may ask for.
pub const MAX_RETRIES: u32 = 10;

/// A named route: targets, a strategy, and how attempts are run.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The name (`ask -m @name`); `None` for a single target named directly.
    pub name: Option<String>,
    /// How targets are ordered.
    pub strategy: Strategy,
    /// The targets as written.
    pub targets: Vec<RouteTarget>,
    /// Backoff between retries.
    pub retry: RetrySettings,
    /// Cooldown of failing targets.
    pub cooldown: CooldownSettings,
    /// Weights of the `balanced` strategy.
    pub weights: Weights,
}

/// How a target named directly (`ask -m provider:model`, a pane's single
/// target) is retried: the `[retries]` section of config.toml. There is no
/// other target to fall back to, so rate limits (429), timeouts (408),
/// conflicts (409), server errors (5xx) and network failures are retried
/// like the official SDKs do, waiting at least what the provider asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectRetries {
    /// Retries after the first try (`max`, default 2).
    pub max: u32,
    /// Backoff (`backoff_ms`, 500) and the longest wait (`max_backoff_ms`,
    /// 60 s, as the SDKs): a provider asking for longer is not retried and
    /// its answer says when to try again.
    pub retry: RetrySettings,
}

impl Default for DirectRetries {
    fn default() -> Self {
        Self {
            max: DEFAULT_DIRECT_RETRIES,
            retry: RetrySettings {
                backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(60),
            },
        }
    }
}

impl Route {
    /// One target named directly with the default [`DirectRetries`].
    pub fn single(target: RouteTarget) -> Self {
        Self::direct(target, &DirectRetries::default())
    }

    /// One target named directly (`ask -m provider:model`): retried as
    /// `retries` says, and run even while cooling down, since the user
    /// asked for that target; policy, budgets and health still apply.
    pub fn direct(target: RouteTarget, retries: &DirectRetries) -> Self {
        Self {
            name: None,
            strategy: Strategy::Ordered,
            targets: vec![RouteTarget {
                retries: retries.max,
                ..target
            }],
            retry: retries.retry,
            cooldown: CooldownSettings::default(),
            weights: Weights::default(),
        }
    }

    /// `@name` for a named route, the target's label for a single target.
    pub fn label(&self) -> String {
        match (&self.name, self.targets.first()) {
            (Some(n), _) => format!("@{n}"),
            (None, Some(t)) => t.label(),
            (None, None) => String::new(),
        }
    }

    /// A single target named directly: cooldowns do not skip it.
    pub fn is_explicit(&self) -> bool {
        self.name.is_none()
    }
}

/// Every route and the policy, as configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingConfig {
    /// Routes by name.
    pub routes: BTreeMap<String, Route>,
    /// The `[policy]` section.
    pub policy: Policy,
    /// The `[retries]` section: retries of targets named directly.
    pub direct: DirectRetries,
    /// Unknown keys and ignored settings, located (`file:line: field: ...`).
    pub warnings: Vec<String>,
}

impl RoutingConfig {
    /// Read `[routes.*]` and `[policy]` from `config`.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let policy = Policy::from_config(config, &mut warnings)?;
        let direct = parse_direct_retries(config, &mut warnings)?;
        let mut routes = BTreeMap::new();
        for (name, table) in &config.routes {
            let route = parse_route(config, name, table, &mut warnings)?;
            routes.insert(name.clone(), route);
        }
        Ok(Self {
            routes,
            policy,
            direct,
            warnings,
        })
    }

    /// The route `name` (without the `@`).
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// `target` named directly, retried as `[retries]` says.
    pub fn single(&self, target: RouteTarget) -> Route {
        Route::direct(target, &self.direct)
    }

    /// What a target string names: `@name`, one of the routes, or
    /// `provider:model`, that model at a provider of `config` (configured
    /// or a preset), run as a single target. The one resolution the app,
    /// the CLI and the Local API share.
    pub fn target(&self, config: &Config, raw: &str) -> Result<Route, TargetError> {
        if let Some(name) = raw.strip_prefix('@') {
            return self
                .route(name)
                .cloned()
                .ok_or_else(|| TargetError::UnknownRoute {
                    name: name.to_owned(),
                });
        }
        let Some((provider_id, model)) = raw
            .split_once(':')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        else {
            return Err(TargetError::NotATarget {
                raw: raw.to_owned(),
            });
        };
        let provider =
            config
                .provider(provider_id)
                .ok_or_else(|| TargetError::UnknownProvider {
                    provider: provider_id.to_owned(),
                })?;
        Ok(self.single(RouteTarget::new(provider, model)))
    }
}

const RETRIES_KEYS: &[&str] = &["max", "backoff_ms", "max_backoff_ms"];

fn parse_direct_retries(
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<DirectRetries, ConfigError> {
    let f = Fields {
        config,
        table_path: "retries".to_owned(),
        table: &config.retries,
    };
    f.warn_unknown(RETRIES_KEYS, "[retries]", warnings);
    let d = DirectRetries::default();
    Ok(DirectRetries {
        max: f
            .u64("max", 0, u64::from(MAX_RETRIES))?
            .map_or(d.max, |r| u32::try_from(r).unwrap_or(MAX_RETRIES)),
        retry: f.retry_settings(d.retry)?,
    })
}

/// Why a target string names nothing that can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `@name` and no such route.
    #[error("unknown route \"@{name}\": define [routes.{name}] in config.toml")]
    UnknownRoute {
        /// The name, without the `@`.
        name: String,
    },
    /// Neither `@route` nor `provider:model`.
    #[error("{raw:?} is not provider:model or @route")]
    NotATarget {
        /// As given.
        raw: String,
    },
    /// `provider:model` with a provider id nobody configured (and no preset).
    #[error("unknown provider {provider:?}: add it in settings or config.toml")]
    UnknownProvider {
        /// The provider id.
        provider: String,
    },
}

const ROUTE_KEYS: &[&str] = &[
    "strategy",
    "targets",
    "first_token_timeout_ms",
    "idle_timeout_ms",
    "total_timeout_ms",
    "retries",
    "backoff_ms",
    "max_backoff_ms",
    "cooldown_after",
    "cooldown_ms",
    "max_cooldown_ms",
    "weights",
];

const TARGET_KEYS: &[&str] = &[
    "target",
    "temperature",
    "top_p",
    "max_tokens",
    "first_token_timeout_ms",
    "idle_timeout_ms",
    "total_timeout_ms",
    "retries",
];

/// Reads typed values out of one table, locating errors at `table.key`.
struct Fields<'a> {
    config: &'a Config,
    table_path: String,
    table: &'a toml::Table,
}

impl<'a> Fields<'a> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.config.error_at(&self.table_path, Some(key), message)
    }

    fn warn_unknown(&self, known: &[&str], what: &str, warnings: &mut Vec<String>) {
        for key in self.table.keys() {
            if !known.contains(&key.as_str()) {
                warnings.push(
                    self.err(
                        key,
                        format!(
                            "unknown key in {what} is ignored (known: {})",
                            known.join(", ")
                        ),
                    )
                    .to_string(),
                );
            }
        }
    }

    fn u64(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => u64::try_from(*i)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .map(Some)
                .ok_or_else(|| self.err(key, format!("{i} is out of range ({min} to {max})"))),
            Some(other) => Err(self.err(
                key,
                format!("expected a whole number, found {}", other.type_str()),
            )),
        }
    }

    fn millis(&self, key: &str, min: u64) -> Result<Option<Duration>, ConfigError> {
        // A day is far beyond any sensible timer and keeps sums from overflowing.
        Ok(self.u64(key, min, 86_400_000)?.map(Duration::from_millis))
    }

    fn float(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, ConfigError> {
        let v = match self.table.get(key) {
            None => return Ok(None),
            Some(Value::Float(f)) => *f,
            Some(Value::Integer(i)) => *i as f64,
            Some(other) => {
                return Err(self.err(
                    key,
                    format!("expected a number, found {}", other.type_str()),
                ));
            }
        };
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(Some(v))
        } else {
            Err(self.err(key, format!("{v} is out of range ({min} to {max})")))
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    /// `backoff_ms` and `max_backoff_ms` over `defaults`; the cap defaults
    /// to at least the backoff and may not be below it.
    fn retry_settings(&self, defaults: RetrySettings) -> Result<RetrySettings, ConfigError> {
        let backoff = self.millis("backoff_ms", 0)?.unwrap_or(defaults.backoff);
        let max_backoff = self
            .millis("max_backoff_ms", 0)?
            .unwrap_or(defaults.max_backoff.max(backoff));
        if max_backoff < backoff {
            return Err(self.err(
                "max_backoff_ms",
                format!(
                    "{} is below backoff_ms ({})",
                    max_backoff.as_millis(),
                    backoff.as_millis()
                ),
            ));
        }
        Ok(RetrySettings {
            backoff,
            max_backoff,
        })
    }

    fn timeouts(&self, base: Timeouts) -> Result<Timeouts, ConfigError> {
        Ok(Timeouts {
            first_token: self
                .millis("first_token_timeout_ms", 1)?
                .unwrap_or(base.first_token),
            idle: self.millis("idle_timeout_ms", 1)?.unwrap_or(base.idle),
            total: self.millis("total_timeout_ms", 1)?.unwrap_or(base.total),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_route(
    config: &Config,
    name: &str,
    table: &toml::Table,
    warnings: &mut Vec<String>,
) -> Result<Route, ConfigError> {
    let path = format!("routes.{name}");
    let f = Fields {
        config,
        table_path: path.clone(),
        table,
    };
    if !valid_name(name) {
        return Err(config.error_at(
            &path,
            None,
            "a route name uses letters, digits, '-', '_' or '.'",
        ));
    }
    f.warn_unknown(ROUTE_KEYS, "a route", warnings);

    let strategy = match f.string("strategy")? {
        None => Strategy::Ordered,
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            f.err(
                "strategy",
                format!("unknown strategy {s:?} (ordered, cheapest, fastest or balanced)"),
            )
        })?,
    };
    let timeouts = f.timeouts(Timeouts::default())?;
    let retries = f
        .u64("retries", 0, u64::from(MAX_RETRIES))?
        .map_or(DEFAULT_RETRIES, |r| u32::try_from(r).unwrap_or(MAX_RETRIES));
    let retry = f.retry_settings(RetrySettings::default())?;
    let cd = CooldownSettings::default();
    let cooldown_base = f.millis("cooldown_ms", 1)?.unwrap_or(cd.base);
    let cooldown = CooldownSettings {
        after_failures: f
            .u64("cooldown_after", 1, 1000)?
            .map_or(cd.after_failures, |v| u32::try_from(v).unwrap_or(1000)),
        base: cooldown_base,
        max: f
            .millis("max_cooldown_ms", 1)?
            .unwrap_or(cd.max.max(cooldown_base)),
    };
    if cooldown.max < cooldown.base {
        return Err(f.err("max_cooldown_ms", "is below cooldown_ms"));
    }
    let weights = parse_weights(config, &path, table, strategy, warnings)?;

    let targets = match table.get("targets") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None => {
            return Err(f.err(
                "targets",
                "a route needs at least one target, e.g. targets = [\"openai:gpt-6-luna\"]",
            ));
        }
        Some(other) => {
            return Err(f.err(
                "targets",
                format!("expected a list of targets, found {}", other.type_str()),
            ));
        }
    };
    let mut parsed = Vec::with_capacity(targets.len());
    for item in targets {
        parsed.push(parse_target(config, &f, item, timeouts, retries, warnings)?);
    }
    Ok(Route {
        name: Some(name.to_owned()),
        strategy,
        targets: parsed,
        retry,
        cooldown,
        weights,
    })
}

fn parse_weights(
    config: &Config,
    route_path: &str,
    route: &toml::Table,
    strategy: Strategy,
    warnings: &mut Vec<String>,
) -> Result<Weights, ConfigError> {
    let table = match route.get("weights") {
        None => return Ok(Weights::default()),
        Some(Value::Table(t)) => t,
        Some(other) => {
            return Err(config.error_at(
                route_path,
                Some("weights"),
                format!(
                    "expected a table such as {{ cost = 0.7, latency = 0.3 }}, found {}",
                    other.type_str()
                ),
            ));
        }
    };
    if strategy != Strategy::Balanced {
        warnings.push(
            config
                .error_at(
                    route_path,
                    Some("weights"),
                    format!(
                        "weights apply to strategy \"balanced\" only; this route is \"{strategy}\""
                    ),
                )
                .to_string(),
        );
    }
    // Errors inside an inline table are located at the `weights` line.
    let f = Fields {
        config,
        table_path: route_path.to_owned(),
        table,
    };
    let loc = |key: &str| format!("weights.{key}");
    for key in table.keys() {
        if key != "cost" && key != "latency" {
            warnings.push(
                config
                    .error_at(
                        route_path,
                        Some("weights"),
                        format!("unknown weight {key:?} is ignored (known: cost, latency)"),
                    )
                    .to_string(),
            );
        }
    }
    let weights_line = config.error_at(route_path, Some("weights"), "").line;
    let get = |key: &str| {
        f.float(key, 0.0, 1e6).map_err(|mut e| {
            e.line = weights_line;
            e.field = Some(format!("{route_path}.{}", loc(key)));
            e
        })
    };
    let d = Weights::default();
    let w = Weights {
        cost: get("cost")?.unwrap_or(d.cost),
        latency: get("latency")?.unwrap_or(d.latency),
    };
    if w.cost + w.latency <= 0.0 {
        return Err(config.error_at(
            route_path,
            Some("weights"),
            "at least one weight must be above 0",
        ));
    }
    Ok(w)
}

fn parse_target(
    config: &Config,
    route: &Fields<'_>,
    item: &Value,
    route_timeouts: Timeouts,
    route_retries: u32,
    warnings: &mut Vec<String>,
) -> Result<RouteTarget, ConfigError> {
    let empty = toml::Table::new();
    let (raw, table) = match item {
        Value::String(s) => (s.as_str(), &empty),
        Value::Table(t) => match t.get("target") {
            Some(Value::String(s)) => (s.as_str(), t),
            _ => {
                return Err(route.err(
                    "targets",
                    "a target table needs target = \"provider:model\"",
                ));
            }
        },
        other => {
            return Err(route.err(
                "targets",
                format!(
                    "a target is \"provider:model\" or a table, found {}",
                    other.type_str()
                ),
            ));
        }
    };
    let Some((provider_id, model)) = raw
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        return Err(route.err(
            "targets",
            format!("target {raw:?} is not provider:model (e.g. openai:gpt-6-luna)"),
        ));
    };
    let provider = config.provider(provider_id).ok_or_else(|| {
        route.err(
            "targets",
            format!(
                "target {raw:?}: unknown provider {provider_id:?} (configure it under [providers.{provider_id}] or use a preset)"
            ),
        )
    })?;
    // Settings inside an inline target table are located at the `targets`
    // line and named `routes.<name>.targets.<key>`.
    let f = Fields {
        config,
        table_path: route.table_path.clone(),
        table,
    };
    let relocate = |mut e: ConfigError, key: &str| {
        e.line = route.err("targets", "").line;
        e.field = Some(format!("{}.targets.{key}", route.table_path));
        e.message = format!("target {raw:?}: {}", e.message);
        e
    };
    for key in table.keys() {
        if !TARGET_KEYS.contains(&key.as_str()) {
            warnings.push(
                relocate(
                    f.err(
                        key,
                        format!("unknown key is ignored (known: {})", TARGET_KEYS.join(", ")),
                    ),
                    key,
                )
                .to_string(),
            );
        }
    }
    let temperature = f
        .float("temperature", 0.0, 2.0)
        .map_err(|e| relocate(e, "temperature"))?;
    let top_p = f
        .float("top_p", 0.0, 1.0)
        .map_err(|e| relocate(e, "top_p"))?;
    let max_tokens = f
        .u64("max_tokens", 1, u64::from(u32::MAX))
        .map_err(|e| relocate(e, "max_tokens"))?;
    let retries = f
        .u64("retries", 0, u64::from(MAX_RETRIES))
        .map_err(|e| relocate(e, "retries"))?;
    let timeouts = f.timeouts(route_timeouts).map_err(|e| {
        let key = e
            .field
            .as_deref()
            .and_then(|k| k.rsplit('.').next())
            .unwrap_or("timeout")
            .to_owned();
        relocate(e, &key)
    })?;
    Ok(RouteTarget {
        provider,
        model: model.to_owned(),
        params: Params {
            temperature: temperature.map(|t| t as f32),
            top_p: top_p.map(|t| t as f32),
            max_tokens: max_tokens.and_then(|m| u32::try_from(m).ok()),
            stop: Vec::new(),
        },
        timeouts,
        retries: retries.map_or(route_retries, |r| u32::try_from(r).unwrap_or(MAX_RETRIES)),
    })
}

/// Read an optional price (`"2.5"` or `2.5`, USD per million tokens).
pub(super) fn price_field(
    config: &Config,
    table_path: &str,
    table: &toml::Table,
    key: &str,
) -> Result<Option<Price>, ConfigError> {
    match table.get(key) {
        None => Ok(None),
        Some(v) => v
            .clone()
            .try_into::<Price>()
            .map(Some)
            .map_err(|e| config.error_at(table_path, Some(key), e.message().trim().to_owned())),
    }
}

/// Read an optional boolean.
pub(super) fn bool_field(
    config: &Config,
    table_path: &str,
    table: &toml::Table,
    key: &str,
) -> Result<Option<bool>, ConfigError> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(other) => Err(config.error_at(
            table_path,
            Some(key),
            format!("expected true or false, found {}", other.type_str()),
        )),
    }
}

/// Read an optional list of strings.
pub(super) fn strings_field(
    config: &Config,
    table_path: &str,
    table: &toml::Table,
    key: &str,
) -> Result<Option<Vec<String>>, ConfigError> {
    let bad = |found: &str| {
        config.error_at(
            table_path,
            Some(key),
            format!("expected a list of strings, found {found}"),
        )
    };
    match table.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(other.type_str())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(other.type_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<RoutingConfig, ConfigError> {
        let cfg = Config::parse(Path::new("/h/config.toml"), text)?;
        RoutingConfig::from_config(&cfg)
    }

    const PROVIDERS: &str = r#"
[providers.lab]
kind = "openai"
base_url = "http://10.0.0.5:8000/v1"
"#;

    #[test]
    fn routes_take_strings_and_tables_and_resolve_defaults() {
        let cfg = load(&format!(
            r#"{PROVIDERS}
[routes.fast]
strategy = "fastest"
targets = [
  "groq:llama-3.3-70b",
  {{ target = "lab:qwen", temperature = 0.2, max_tokens = 500, first_token_timeout_ms = 1500, retries = 0 }},
]
idle_timeout_ms = 2000
retries = 2
backoff_ms = 5
max_backoff_ms = 50
cooldown_after = 2
cooldown_ms = 100

[routes.plain]
targets = ["openai:gpt-6-luna"]
"#
        ))
        .unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        let fast = cfg.route("fast").unwrap();
        assert_eq!(fast.strategy, Strategy::Fastest);
        assert_eq!(fast.label(), "@fast");
        let [groq, lab] = fast.targets.as_slice() else {
            panic!("two targets")
        };
        assert_eq!(groq.label(), "groq:llama-3.3-70b");
        assert_eq!(groq.retries, 2, "route default");
        assert_eq!(groq.timeouts.idle, Duration::from_secs(2));
        assert_eq!(groq.timeouts.first_token, Timeouts::default().first_token);
        assert_eq!(lab.provider.id, "lab");
        assert_eq!(lab.retries, 0, "target override");
        assert_eq!(lab.params.temperature, Some(0.2));
        assert_eq!(lab.params.max_tokens, Some(500));
        assert_eq!(lab.timeouts.first_token, Duration::from_millis(1500));
        assert_eq!(lab.timeouts.idle, Duration::from_secs(2), "route value");
        assert_eq!(fast.retry.backoff, Duration::from_millis(5));
        assert_eq!(fast.retry.max_backoff, Duration::from_millis(50));
        assert_eq!(fast.cooldown.after_failures, 2);
        assert_eq!(fast.cooldown.base, Duration::from_millis(100));
        assert_eq!(fast.cooldown.max, CooldownSettings::default().max);

        let plain = cfg.route("plain").unwrap();
        assert_eq!(plain.strategy, Strategy::Ordered);
        assert_eq!(plain.targets[0].retries, DEFAULT_RETRIES);
        assert_eq!(plain.retry, RetrySettings::default());
    }

    #[test]
    fn route_errors_name_file_line_and_field() {
        let e =
            load("\n[routes.r]\nstrategy = \"quickest\"\ntargets = [\"openai:x\"]\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("routes.r.strategy"))
        );
        assert!(e.message.contains("quickest"), "{e}");
        assert!(
            e.to_string()
                .starts_with("/h/config.toml:3: routes.r.strategy: "),
            "{e}"
        );

        let e = load("[routes.r]\ntargets = [\"nope:x\"]\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("routes.r.targets"))
        );
        assert!(e.message.contains("unknown provider \"nope\""), "{e}");

        let e = load("[routes.r]\ntargets = [\"openai\"]\n").unwrap_err();
        assert!(e.message.contains("not provider:model"), "{e}");

        let e = load("[routes.r]\nstrategy = \"ordered\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.r.targets"));

        let e = load("[routes.r]\ntargets = [\"openai:x\"]\n\nretries = -1\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("routes.r.retries"))
        );

        let e =
            load("[routes.r]\ntargets = [\"openai:x\"]\nbackoff_ms = 100\nmax_backoff_ms = 10\n")
                .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.r.max_backoff_ms"));

        let e = load(
            "[routes.r]\nstrategy = \"balanced\"\n\ntargets = [{ target = \"openai:x\", temperature = 9 }]\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("routes.r.targets.temperature"))
        );
        assert!(e.message.starts_with("target \"openai:x\": "), "{e}");

        let e =
            load("[routes.r]\ntargets = [\"openai:x\"]\nidle_timeout_ms = \"5s\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.r.idle_timeout_ms"));
        assert!(e.message.contains("whole number"), "{e}");
    }

    #[test]
    fn unknown_keys_in_routes_are_reported_with_their_line() {
        let cfg = load(
            "[routes.r]\ntargets = [{ target = \"openai:x\", temprature = 1 }]\nretires = 3\nweights = { cost = 1 }\n",
        )
        .unwrap();
        assert_eq!(cfg.warnings.len(), 3, "{:?}", cfg.warnings);
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.starts_with("/h/config.toml:3: routes.r.retires: unknown key")),
            "{:?}",
            cfg.warnings
        );
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.starts_with("/h/config.toml:2: routes.r.targets.temprature: ")),
            "{:?}",
            cfg.warnings
        );
        assert!(
            cfg.warnings.iter().any(
                |w| w.contains("routes.r.weights: weights apply to strategy \"balanced\" only")
            ),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn direct_targets_retry_twice_unless_retries_says_otherwise() {
        let cfg = load("").unwrap();
        assert_eq!(cfg.direct, DirectRetries::default());
        let t = RouteTarget::new(ProviderConfig::from_preset("openai").unwrap(), "m");
        let r = cfg.single(t.clone());
        assert!(r.is_explicit());
        assert_eq!(r.targets[0].retries, 2);
        assert_eq!(r.retry.max_backoff, Duration::from_secs(60));

        let cfg = load("[retries]\nmax = 0\nbackoff_ms = 10\nmax_backoff_ms = 3000\ncolour = 1\n")
            .unwrap();
        let r = cfg.single(t);
        assert_eq!(r.targets[0].retries, 0);
        assert_eq!(r.retry.backoff, Duration::from_millis(10));
        assert_eq!(r.retry.max_backoff, Duration::from_secs(3));
        assert!(
            cfg.warnings.iter().any(|w| w.contains("retries.colour")),
            "{:?}",
            cfg.warnings
        );

        let e = load("\n[retries]\nmax = 11\n").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("retries.max")));
        let e = load("[retries]\nbackoff_ms = 100\nmax_backoff_ms = 10\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("retries.max_backoff_ms"));
    }

    #[test]
    fn balanced_weights_are_read_and_checked() {
        let cfg = load(
            "[routes.b]\nstrategy = \"balanced\"\ntargets = [\"openai:x\"]\nweights = { cost = 3, latency = 1 }\n",
        )
        .unwrap();
        let w = cfg.route("b").unwrap().weights;
        assert_eq!((w.cost, w.latency), (3.0, 1.0));
        let e = load(
            "[routes.b]\nstrategy = \"balanced\"\ntargets = [\"openai:x\"]\nweights = { cost = 0, latency = 0 }\n",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.b.weights"));
        let e = load(
            "[routes.b]\nstrategy = \"balanced\"\ntargets = [\"openai:x\"]\nweights = { cost = -1 }\n",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.b.weights.cost"));
    }
}
