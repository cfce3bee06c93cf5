//! `config.toml`: providers and their models. Validated on load; every error
//! names the file, the line and the field, and unknown keys are reported
//! as warnings rather than silently ignored.
//!
//! Also here: `[budgets.<name>]` ([`Budget`]) and `[ui]` ([`UiSettings`]),
//! validated with the rest, and [`Config::write`] / [`Config::update`],
//! which replace the file atomically and refuse to write a configuration
//! that would not load, keeping the previous good one as `config.toml.bak`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::{Catalog, ModelEntry};
use crate::provider::{MaxTokensField, ProviderConfig, ProviderKind, is_local_url, presets};

/// A problem with the config file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted field path (`providers.work.base_url`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

// No `Debug` on the raw file: a user may have put a credential in a
// provider's `headers`.
#[derive(Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    routes: BTreeMap<String, toml::Table>,
    #[serde(default)]
    budgets: BTreeMap<String, toml::Table>,
    #[serde(default)]
    ui: toml::Table,
    #[serde(default)]
    policy: toml::Table,
    #[serde(default)]
    retries: toml::Table,
    #[serde(default)]
    local_api: toml::Table,
}

#[derive(Deserialize)]
struct RawProvider {
    #[serde(default)]
    kind: Option<ProviderKind>,
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    stream_usage: Option<bool>,
    #[serde(default)]
    max_tokens_field: Option<MaxTokensField>,
    #[serde(default)]
    local: Option<bool>,
    #[serde(default)]
    reasoning_outside_completion: Option<bool>,
    #[serde(default)]
    models: Vec<ModelEntry>,
}

/// The loaded configuration. Its `Debug` leaves out the file's text and
/// hides credential header values, in case the user put a key there.
#[derive(Clone, Default)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Providers the user configured, by id (disabled ones left out).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Providers turned off with `enabled = false`, by id: never called,
    /// their keys never read, and presets among them not offered either.
    /// [`Config::provider`] still returns them (with `enabled` false), so a
    /// target naming one is skipped with a reason rather than unknown.
    pub disabled: BTreeMap<String, ProviderConfig>,
    /// Model entries per provider id.
    pub models: BTreeMap<String, Vec<ModelEntry>>,
    /// `[routes.<name>]` tables as written; the routing module reads them.
    pub routes: BTreeMap<String, toml::Table>,
    /// `[budgets.<name>]` tables as written; the ledger module reads them.
    pub budgets: BTreeMap<String, toml::Table>,
    /// The `[ui]` table as written (preferences of the desktop app).
    pub ui: toml::Table,
    /// The `[policy]` table as written; the routing module reads it.
    pub policy: toml::Table,
    /// The `[retries]` table as written (retries of targets named
    /// directly); the routing module reads it.
    pub retries: toml::Table,
    /// The `[local_api]` table as written; the Local API
    /// (`switchboard-gateway`) reads it.
    pub local_api: toml::Table,
    /// The file's text, to locate errors found by the modules above.
    pub text: String,
    /// Keys the file has that Switchboard does not know (`providers.x.colour`).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("providers", &self.providers)
            .field("disabled", &self.disabled)
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .field("routes", &self.routes)
            .field("budgets", &self.budgets)
            .field("ui", &self.ui)
            .field("policy", &self.policy)
            .field("retries", &self.retries)
            .field("local_api", &self.local_api)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Config {
    /// Load `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                path: path.to_owned(),
                ..Self::default()
            }),
            Err(e) => Err(ConfigError {
                path: path.to_owned(),
                line: None,
                field: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Parse `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut unknown = Vec::new();
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(path, text, &e))?;
        let raw: RawConfig = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
            .map_err(|e| toml_error(path, text, &e))?;
        let mut cfg = Config {
            path: path.to_owned(),
            routes: raw.routes,
            budgets: raw.budgets,
            ui: raw.ui,
            policy: raw.policy,
            retries: raw.retries,
            local_api: raw.local_api,
            text: text.to_owned(),
            warnings: unknown
                .iter()
                .map(|k| format!("unknown key `{k}` is ignored"))
                .collect(),
            ..Config::default()
        };
        for (id, p) in raw.providers {
            let located = |field: &str, message: String| ConfigError {
                path: path.to_owned(),
                line: find_line(text, &format!("providers.{id}"), Some(field))
                    .or_else(|| find_line(text, &format!("providers.{id}"), None)),
                field: Some(format!("providers.{id}.{field}")),
                message,
            };
            if !valid_id(&id) {
                return Err(located(
                    "",
                    "a provider id uses letters, digits, '-', '_' or '.'".into(),
                )
                .with_field(format!("providers.{id}")));
            }
            let preset_id = p
                .preset
                .clone()
                .or_else(|| presets().contains_key(&id).then(|| id.clone()));
            let preset = match &preset_id {
                Some(pid) => Some(presets().get(pid).ok_or_else(|| {
                    let known: Vec<&str> = presets().keys().map(String::as_str).collect();
                    located(
                        "preset",
                        format!("unknown preset {pid:?} (known: {})", known.join(", ")),
                    )
                })?),
                None => None,
            };
            let kind = match (p.kind, preset) {
                (Some(k), Some(pr)) if k != pr.kind => {
                    return Err(located(
                        "kind",
                        format!(
                            "{:?} contradicts preset {:?}, which speaks {:?}",
                            k.as_str(),
                            preset_id.unwrap_or_default(),
                            pr.kind.as_str()
                        ),
                    ));
                }
                (Some(k), _) => k,
                (None, Some(pr)) => pr.kind,
                (None, None) => {
                    return Err(located(
                        "kind",
                        "missing: set kind = \"openai\", \"anthropic\" or \"gemini\" (or a preset)"
                            .into(),
                    ));
                }
            };
            let base_url = p
                .base_url
                .clone()
                .or_else(|| preset.and_then(|pr| pr.base_url.clone()))
                .ok_or_else(|| located("base_url", "missing: this provider needs a base_url (e.g. \"http://localhost:8000/v1\")".into()))?;
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(located(
                    "base_url",
                    format!("{base_url:?} is not an http(s) URL"),
                ));
            }
            let mut headers: Vec<(String, String)> = preset
                .map(|pr| {
                    pr.headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            for (k, v) in &p.headers {
                headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
                headers.push((k.clone(), v.clone()));
            }
            let config = ProviderConfig {
                id: id.clone(),
                name: p
                    .name
                    .clone()
                    .or_else(|| preset.map(|pr| pr.name.clone()))
                    .unwrap_or_else(|| id.clone()),
                kind,
                preset: preset_id.clone(),
                base_url: base_url.trim_end_matches('/').to_owned(),
                headers,
                stream_usage: p
                    .stream_usage
                    .or_else(|| preset.and_then(|pr| pr.stream_usage))
                    .unwrap_or(kind == ProviderKind::OpenAi),
                max_tokens_field: p
                    .max_tokens_field
                    .or_else(|| preset.map(|pr| pr.max_tokens_field))
                    .unwrap_or_default(),
                local: p.local.unwrap_or_else(|| is_local_url(&base_url)),
                live_prices: preset.is_some_and(|pr| pr.live_prices),
                reasoning_outside_completion: p
                    .reasoning_outside_completion
                    .or_else(|| preset.map(|pr| pr.reasoning_outside_completion))
                    .unwrap_or(false),
                enabled: p.enabled != Some(false),
                limits: preset.map(|pr| pr.limits).unwrap_or_default(),
            };
            for entry in &p.models {
                if let Some((field, message)) = entry.problem() {
                    return Err(ConfigError {
                        path: path.to_owned(),
                        line: find_line(text, &format!("providers.{id}.models"), Some(field))
                            .or_else(|| find_line(text, &format!("providers.{id}.models"), None)),
                        field: Some(format!("providers.{id}.models.{field}")),
                        message,
                    });
                }
            }
            if !p.models.is_empty() {
                cfg.models.insert(id.clone(), p.models);
            }
            if p.enabled == Some(false) {
                cfg.disabled.insert(id, config);
            } else {
                cfg.providers.insert(id, config);
            }
        }
        cfg.validate_local_data()?;
        Ok(cfg)
    }

    /// The provider `id`: configured (disabled ones included, with
    /// `enabled` false: never the preset behind a provider the user turned
    /// off), else the bundled preset of that name.
    pub fn provider(&self, id: &str) -> Option<ProviderConfig> {
        self.providers
            .get(id)
            .or_else(|| self.disabled.get(id))
            .cloned()
            .or_else(|| ProviderConfig::from_preset(id))
    }

    /// The catalog with this config's model entries on top.
    pub fn catalog(&self) -> Catalog {
        let mut c = Catalog::new();
        for (id, entries) in &self.models {
            c.add_config(id, entries);
        }
        c
    }
}

impl Config {
    /// An error located at `key` of `[table]` (or at the table's header)
    /// in this file, e.g. `error_at("routes.fast", "strategy", ...)`.
    pub fn error_at(
        &self,
        table: &str,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        let line = key
            .and_then(|k| find_line(&self.text, table, Some(k)))
            .or_else(|| find_line(&self.text, table, None));
        ConfigError {
            path: self.path.clone(),
            line,
            field: Some(key.map_or_else(|| table.to_owned(), |k| format!("{table}.{k}"))),
            message: message.into(),
        }
    }
}

impl ConfigError {
    fn with_field(mut self, field: String) -> Self {
        self.field = Some(field);
        self
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Locate a parse or type error: the line from the error's span, the field
/// from the key on that line and the table header above it.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, field) = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            (Some(line), field_at(text, line))
        }
        None => (None, None),
    };
    ConfigError {
        path: path.to_owned(),
        line,
        field,
        message: e.message().trim().to_owned(),
    }
}

fn header_of(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t
        .strip_prefix("[[")
        .and_then(|r| r.strip_suffix("]]"))
        .or_else(|| t.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
    Some(inner.trim().replace(['"', ' '], ""))
}

fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let key = here
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned());
    let table = lines[..line.saturating_sub(1)]
        .iter()
        .rev()
        .find_map(|l| header_of(l));
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => header_of(here).or(Some(t)),
        (None, None) => header_of(here),
    }
}

/// The 1-based line of `key` inside `[table]` (or of the header itself).
fn find_line(text: &str, table: &str, key: Option<&str>) -> Option<usize> {
    let mut in_table = false;
    for (i, l) in text.lines().enumerate() {
        if let Some(h) = header_of(l) {
            in_table = h == table;
            if in_table && key.is_none() {
                return Some(i + 1);
            }
            continue;
        }
        if in_table
            && let Some(k) = key
            && l.split_once('=')
                .is_some_and(|(lk, _)| lk.trim().trim_matches('"') == k)
        {
            return Some(i + 1);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Budgets, UI preferences, atomic writes.

/// Which spend a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BudgetScope {
    /// Everything.
    Global,
    /// One provider id.
    Provider(String),
    /// One route.
    Route(String),
    /// Conversations with one tag.
    Tag(String),
}

impl BudgetScope {
    /// Does an attempt with this context count against the scope?
    pub fn matches(&self, ctx: &crate::hooks::SpendContext) -> bool {
        match self {
            BudgetScope::Global => true,
            BudgetScope::Provider(p) => ctx.provider == *p,
            BudgetScope::Route(r) => ctx.route.as_deref() == Some(r.as_str()),
            BudgetScope::Tag(t) => ctx.tags.iter().any(|x| x == t),
        }
    }
}

impl std::str::FromStr for BudgetScope {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let expected = "expected \"global\", \"provider:<id>\", \"route:<name>\" or \"tag:<tag>\"";
        if t == "global" {
            return Ok(BudgetScope::Global);
        }
        let Some((kind, name)) = t.split_once(':') else {
            return Err(format!("unknown scope {t:?}: {expected}"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("scope {t:?} names nothing after ':'"));
        }
        match kind.trim() {
            "provider" if valid_id(name) => Ok(BudgetScope::Provider(name.to_owned())),
            "provider" => Err(format!("{name:?} is not a provider id")),
            "route" => Ok(BudgetScope::Route(name.to_owned())),
            "tag" => Ok(BudgetScope::Tag(name.to_owned())),
            _ => Err(format!("unknown scope {t:?}: {expected}")),
        }
    }
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::Global => f.write_str("global"),
            BudgetScope::Provider(p) => write!(f, "provider:{p}"),
            BudgetScope::Route(r) => write!(f, "route:{r}"),
            BudgetScope::Tag(t) => write!(f, "tag:{t}"),
        }
    }
}

impl serde::Serialize for BudgetScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How often a budget starts over (at UTC boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// From 00:00 UTC every day.
    Daily,
    /// From 00:00 UTC on the 1st of every month.
    Monthly,
}

impl BudgetPeriod {
    /// `daily` or `monthly`.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Daily => "daily",
            BudgetPeriod::Monthly => "monthly",
        }
    }
}

impl std::str::FromStr for BudgetPeriod {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "daily" => Ok(BudgetPeriod::Daily),
            "monthly" => Ok(BudgetPeriod::Monthly),
            other => Err(format!(
                "unknown period {other:?}: expected \"daily\" or \"monthly\""
            )),
        }
    }
}

/// One `[budgets.<name>]` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    /// The table's name, used in messages.
    pub name: String,
    /// What it counts (`scope`, default global).
    pub scope: BudgetScope,
    /// How often it starts over (`period`, default monthly).
    pub period: BudgetPeriod,
    /// The limit (`limit_usd`, an exact decimal).
    pub limit: crate::money::Cost,
    /// Warn from this fraction of the limit, in basis points
    /// (`warn_at = 0.8` is 8000), so the threshold is exact.
    pub warn_at_bp: u32,
    /// `true`: refuse attempts that would exceed it; `false`: warn only.
    pub hard: bool,
}

impl Budget {
    /// The spend from which the budget warns.
    pub fn warn_threshold(&self) -> crate::money::Cost {
        let nanos = i128::from(self.limit.nanos()) * i128::from(self.warn_at_bp) / 10_000;
        crate::money::Cost::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// `warn_at` as written (a fraction).
    pub fn warn_at(&self) -> f64 {
        f64::from(self.warn_at_bp) / 10_000.0
    }
}

/// The desktop app's colour scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Follow the OS.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// How compare panes are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaneLayout {
    /// Side by side.
    #[default]
    Columns,
    /// One above the other.
    Rows,
    /// A grid.
    Grid,
}

/// The `[ui]` table: preferences of the desktop app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UiSettings {
    /// `theme = "system" | "light" | "dark"`.
    pub theme: Theme,
    /// `layout = "columns" | "rows" | "grid"`.
    pub layout: PaneLayout,
    /// `sync_scroll = true`: compare panes scroll together.
    pub sync_scroll: bool,
    /// `default_targets = ["openai:gpt-x", ...]`: the panes of a new chat.
    pub default_targets: Vec<String>,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            theme: Theme::default(),
            layout: PaneLayout::default(),
            sync_scroll: true,
            default_targets: Vec::new(),
        }
    }
}

/// A TOML number or string as the decimal text the user wrote.
fn decimal_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) if f.is_finite() => Some(format!("{f}")),
        _ => None,
    }
}

impl Config {
    /// The `[budgets.*]` tables, parsed; errors name the file, line and field.
    pub fn budget_list(&self) -> Result<Vec<Budget>, ConfigError> {
        self.parse_budgets().map(|(b, _)| b)
    }

    /// The `[ui]` table, parsed (defaults for what it leaves out).
    pub fn ui_settings(&self) -> Result<UiSettings, ConfigError> {
        self.parse_ui().map(|(u, _)| u)
    }

    fn validate_local_data(&mut self) -> Result<(), ConfigError> {
        let (_, budget_warnings) = self.parse_budgets()?;
        let (_, ui_warnings) = self.parse_ui()?;
        self.warnings.extend(budget_warnings);
        self.warnings.extend(ui_warnings);
        Ok(())
    }

    fn parse_budgets(&self) -> Result<(Vec<Budget>, Vec<String>), ConfigError> {
        let mut budgets = Vec::new();
        let mut warnings = Vec::new();
        for (name, table) in &self.budgets {
            let at = format!("budgets.{name}");
            let err = |key: &str, message: String| self.error_at(&at, Some(key), message);
            if !valid_id(name) {
                return Err(self.error_at(
                    &at,
                    None,
                    "a budget name uses letters, digits, '-', '_' or '.'",
                ));
            }
            let mut budget = Budget {
                name: name.clone(),
                scope: BudgetScope::Global,
                period: BudgetPeriod::Monthly,
                limit: crate::money::Cost::ZERO,
                warn_at_bp: 8_000,
                hard: true,
            };
            let mut has_limit = false;
            for (key, value) in table {
                match key.as_str() {
                    "scope" => {
                        let text = value.as_str().ok_or_else(|| {
                            err(
                                key,
                                "must be a string such as \"global\" or \"provider:openai\"".into(),
                            )
                        })?;
                        budget.scope = text.parse().map_err(|m| err(key, m))?;
                    }
                    "period" => {
                        let text = value
                            .as_str()
                            .ok_or_else(|| err(key, "must be \"daily\" or \"monthly\"".into()))?;
                        budget.period = text.parse().map_err(|m| err(key, m))?;
                    }
                    "limit_usd" => {
                        let text = decimal_text(value).ok_or_else(|| {
                            err(key, "must be an amount in USD such as \"10.00\"".into())
                        })?;
                        let limit = crate::money::Cost::from_usd(&text)
                            .map_err(|e| err(key, e.to_string()))?;
                        if limit <= crate::money::Cost::ZERO {
                            return Err(err(key, format!("{text:?} must be more than zero")));
                        }
                        budget.limit = limit;
                        has_limit = true;
                    }
                    "warn_at" => {
                        let f = match value {
                            toml::Value::Float(f) => *f,
                            toml::Value::Integer(i) => *i as f64,
                            _ => f64::NAN,
                        };
                        if !(0.0..=1.0).contains(&f) {
                            return Err(err(
                                key,
                                "must be a fraction of the limit from 0 to 1 (e.g. 0.8)".into(),
                            ));
                        }
                        budget.warn_at_bp = (f * 10_000.0).round() as u32;
                    }
                    "hard" => {
                        budget.hard = value.as_bool().ok_or_else(|| {
                            err(
                                key,
                                "must be true (refuse requests) or false (warn only)".into(),
                            )
                        })?;
                    }
                    other => warnings.push(format!("unknown key `{at}.{other}` is ignored")),
                }
            }
            if !has_limit {
                return Err(self.error_at(
                    &at,
                    None,
                    "missing limit_usd (e.g. limit_usd = \"10.00\")",
                ));
            }
            match &budget.scope {
                BudgetScope::Provider(p) if self.provider(p).is_none() => warnings.push(format!(
                    "budget `{name}` counts provider {p:?}, which is neither configured nor a preset"
                )),
                BudgetScope::Route(r) if !self.routes.contains_key(r) => warnings.push(format!(
                    "budget `{name}` counts route {r:?}, which is not configured"
                )),
                _ => {}
            }
            budgets.push(budget);
        }
        Ok((budgets, warnings))
    }

    fn parse_ui(&self) -> Result<(UiSettings, Vec<String>), ConfigError> {
        let mut ui = UiSettings::default();
        let mut warnings = Vec::new();
        let err = |key: &str, message: &str| self.error_at("ui", Some(key), message);
        for (key, value) in &self.ui {
            match key.as_str() {
                "theme" => {
                    ui.theme = match value.as_str() {
                        Some("system") => Theme::System,
                        Some("light") => Theme::Light,
                        Some("dark") => Theme::Dark,
                        _ => return Err(err(key, "must be \"system\", \"light\" or \"dark\"")),
                    }
                }
                "layout" => {
                    ui.layout = match value.as_str() {
                        Some("columns") => PaneLayout::Columns,
                        Some("rows") => PaneLayout::Rows,
                        Some("grid") => PaneLayout::Grid,
                        _ => return Err(err(key, "must be \"columns\", \"rows\" or \"grid\"")),
                    }
                }
                "sync_scroll" => {
                    ui.sync_scroll = value
                        .as_bool()
                        .ok_or_else(|| err(key, "must be true or false"))?;
                }
                "default_targets" => {
                    let list = value
                        .as_array()
                        .ok_or_else(|| err(key, "must be a list such as [\"openai:gpt-x\"]"))?;
                    ui.default_targets = list
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned)
                                .ok_or_else(|| err(key, "every target is a non-empty string"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                other => warnings.push(format!("unknown key `ui.{other}` is ignored")),
            }
        }
        Ok((ui, warnings))
    }

    /// Replace the file at `path` with `text`, atomically: refused (and
    /// nothing touched) unless `text` is a valid configuration; written to
    /// a temporary file, flushed to disk and renamed over the old one, so
    /// a crash leaves the old file or the new one, never half of either.
    /// The previous file, if it was valid, is kept as `config.toml.bak`.
    pub fn write(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg = Config::parse(path, text).map_err(|e| ConfigError {
            message: format!(
                "refused to write a configuration that would not load (nothing was changed): {}",
                e.message
            ),
            ..e
        })?;
        let io_err = |what: &str, e: std::io::Error| ConfigError {
            path: path.to_owned(),
            line: None,
            field: None,
            message: format!("{what}: {e}"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create its directory", e))?;
        }
        if let Ok(old) = std::fs::read_to_string(path)
            && old != text
            && Config::parse(path, &old).is_ok()
        {
            replace_file(&backup_path(path), old.as_bytes())
                .map_err(|e| io_err("cannot keep a backup of the previous file", e))?;
        }
        replace_file(path, text.as_bytes()).map_err(|e| io_err("cannot write", e))?;
        Ok(cfg)
    }

    /// Edit the file at `path` with `edit` (formatting and comments of the
    /// rest are kept), then [`Config::write`] the result. A file that does
    /// not load is not edited: fix it first.
    pub fn update(
        path: &Path,
        edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), String>,
    ) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(ConfigError {
                    path: path.to_owned(),
                    line: None,
                    field: None,
                    message: format!("cannot read: {e}"),
                });
            }
        };
        Config::parse(path, &text).map_err(|e| ConfigError {
            message: format!("fix this first (nothing was changed): {}", e.message),
            ..e
        })?;
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            field: None,
            message: format!("cannot edit: {e}"),
        })?;
        edit(&mut doc).map_err(|message| ConfigError {
            path: path.to_owned(),
            line: None,
            field: None,
            message,
        })?;
        Config::write(path, &doc.to_string())
    }
}

/// Where [`Config::write`] keeps the previous good file: `<file>.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// Write `bytes` to a temporary file beside `path`, flush it to disk, and
/// rename it over `path`; then flush the directory so the rename persists.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/h/config.toml"), text)
    }

    #[test]
    fn presets_need_no_base_url_and_custom_servers_are_configuration() {
        let cfg = parse(
            r#"
[providers.openai]

[providers.work]
kind = "openai"
base_url = "http://10.0.0.5:8000/v1/"
headers = { "X-Team" = "ml" }

[[providers.work.models]]
id = "qwen-72b"
input_usd_per_mtok = 0
output_usd_per_mtok = "0"
context_window = 32768

[providers.claude]
preset = "anthropic"
"#,
        )
        .unwrap();
        let openai = &cfg.providers["openai"];
        assert_eq!(openai.base_url, "https://api.openai.com/v1");
        let work = &cfg.providers["work"];
        assert_eq!(work.base_url, "http://10.0.0.5:8000/v1");
        assert!(work.local);
        assert!(work.headers.contains(&("X-Team".into(), "ml".into())));
        assert_eq!(cfg.providers["claude"].kind, ProviderKind::Anthropic);
        let cat = cfg.catalog();
        assert_eq!(
            cat.lookup(work, "qwen-72b").unwrap().context_window,
            Some(32768)
        );
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        // A preset id works without any config at all.
        assert_eq!(cfg.provider("groq").unwrap().kind, ProviderKind::OpenAi);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse("[providers.x]\nkind = \"opnai\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.field.as_deref(), Some("providers.x.kind"));
        assert!(
            e.to_string()
                .starts_with("/h/config.toml:2: providers.x.kind: "),
            "{e}"
        );

        let e = parse("[providers.x]\nkind = \"openai\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("providers.x.base_url"));
        assert_eq!(e.line, Some(1));

        let e = parse("[providers.x]\npreset = \"nope\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("providers.x.preset"))
        );

        let e = parse("\n\n[[providers.openai.models]]\nid = \"m\"\ninput_usd_per_mtok = \"cheap\"\noutput_usd_per_mtok = 1\n").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(
            e.field.as_deref(),
            Some("providers.openai.models.input_usd_per_mtok")
        );

        let e = parse("[providers.x\nkind=1").unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let cfg = parse("[providers.openai]\ncolour = \"blue\"\n").unwrap();
        assert_eq!(
            cfg.warnings,
            vec!["unknown key `providers.openai.colour` is ignored"]
        );
    }

    #[test]
    fn disabled_providers_are_left_out() {
        let cfg = parse("[providers.openai]\nenabled = false\n").unwrap();
        assert!(cfg.providers.is_empty());
        assert!(cfg.disabled.contains_key("openai"));
        // Asked for by id, it is the disabled one, not the preset behind it.
        let p = cfg.provider("openai").unwrap();
        assert!(!p.enabled);
        assert!(cfg.provider("groq").unwrap().enabled);
    }

    #[test]
    fn debug_output_never_shows_a_key_put_in_headers() {
        let cfg = parse(
            "[providers.azure]\nkind = \"openai\"\nbase_url = \"https://x.example/v1\"\nheaders = { \"api-key\" = \"azure-secret-123456\", \"X-Team\" = \"ml\" }\n",
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("azure-secret-123456"), "{shown}");
        assert!(shown.contains("X-Team") && shown.contains("ml"), "{shown}");
        let wire = crate::provider::build_request(
            &cfg.providers["azure"],
            Some("sk-live-987654321"),
            &crate::chat::ChatRequest::new("m", "hi"),
            true,
        );
        let shown = format!("{wire:?}");
        assert!(!shown.contains("sk-live-987654321"), "{shown}");
        assert!(!shown.contains("azure-secret-123456"), "{shown}");
    }

    #[test]
    fn quirk_flags_come_from_presets_and_config() {
        let cfg = parse(
            "[providers.xai]\n[providers.proxy]\nkind = \"openai\"\nbase_url = \"https://x.example/v1\"\nreasoning_outside_completion = true\n",
        )
        .unwrap();
        assert!(cfg.providers["xai"].reasoning_outside_completion);
        assert!(cfg.providers["proxy"].reasoning_outside_completion);
        assert!(!cfg.provider("openai").unwrap().reasoning_outside_completion);
    }
}

#[cfg(test)]
mod local_data_tests {
    use super::*;
    use crate::hooks::SpendContext;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/h/config.toml"), text)
    }

    #[test]
    fn budgets_parse_with_defaults_and_exact_amounts() {
        let cfg = parse(
            r#"
[budgets.month]
limit_usd = "10.00"

[budgets.claude-daily]
scope = "provider:anthropic"
period = "daily"
limit_usd = 0.1
warn_at = 0.5
hard = false

[budgets.client]
scope = "tag:acme"
limit_usd = 3
"#,
        )
        .unwrap();
        let b = cfg.budget_list().unwrap();
        assert_eq!(b.len(), 3);
        let by = |n: &str| b.iter().find(|x| x.name == n).unwrap();
        let month = by("month");
        assert_eq!(month.scope, BudgetScope::Global);
        assert_eq!(month.period, BudgetPeriod::Monthly);
        assert_eq!(month.limit.nanos(), 10_000_000_000);
        assert!(month.hard);
        assert_eq!(month.warn_threshold().nanos(), 8_000_000_000);
        let daily = by("claude-daily");
        assert_eq!(
            daily.limit.nanos(),
            100_000_000,
            "0.1 read as the decimal written"
        );
        assert_eq!(daily.warn_at_bp, 5_000);
        assert!(!daily.hard);
        assert_eq!(by("client").scope, BudgetScope::Tag("acme".into()));
        let ctx = SpendContext {
            provider: "anthropic".into(),
            tags: vec!["acme".into()],
            ..SpendContext::default()
        };
        assert!(b.iter().all(|x| x.scope.matches(&ctx)));
        assert!(!BudgetScope::Route("fast".into()).matches(&ctx));
    }

    #[test]
    fn budget_errors_name_line_and_field() {
        let e = parse("[budgets.x]\nlimit_usd = \"10\"\nscope = \"galaxy\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("budgets.x.scope"))
        );
        assert!(e.message.contains("provider:<id>"), "{e}");
        let e = parse("[budgets.x]\nperiod = \"weekly\"\nlimit_usd = 1\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("budgets.x.period"))
        );
        let e = parse("\n[budgets.x]\nscope = \"global\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("budgets.x")));
        assert!(e.message.contains("limit_usd"), "{e}");
        let e = parse("[budgets.x]\nlimit_usd = \"-5\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("budgets.x.limit_usd"));
        let e = parse("[budgets.x]\nlimit_usd = 1\nwarn_at = 80\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("budgets.x.warn_at"))
        );
        let cfg =
            parse("[budgets.x]\nlimit_usd = 1\ncolour = 1\nscope = \"provider:nope\"\n").unwrap();
        assert!(
            cfg.warnings.iter().any(|w| w.contains("budgets.x.colour")),
            "{:?}",
            cfg.warnings
        );
        assert!(
            cfg.warnings.iter().any(|w| w.contains("\"nope\"")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn ui_preferences_are_validated() {
        let cfg = parse("[ui]\ntheme = \"dark\"\nlayout = \"grid\"\nsync_scroll = false\ndefault_targets = [\"openai:gpt-x\"]\n").unwrap();
        let ui = cfg.ui_settings().unwrap();
        assert_eq!(ui.theme, Theme::Dark);
        assert_eq!(ui.layout, PaneLayout::Grid);
        assert!(!ui.sync_scroll);
        assert_eq!(ui.default_targets, vec!["openai:gpt-x"]);
        let e = parse("[ui]\n\ntheme = \"blue\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("ui.theme")));
        let cfg = parse("[ui]\nfont = 3\n").unwrap();
        assert_eq!(cfg.warnings, vec!["unknown key `ui.font` is ignored"]);
        assert_eq!(
            parse("").unwrap().ui_settings().unwrap(),
            UiSettings::default()
        );
    }

    #[test]
    fn writes_are_atomic_validated_and_keep_the_previous_good_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        let bak = backup_path(&path);
        assert_eq!(bak, tmp.path().join("config.toml.bak"));

        let first = "# mine\n[budgets.a]\nlimit_usd = \"1\"\n";
        Config::write(&path, first).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        assert!(!bak.exists(), "nothing to back up the first time");

        // An invalid configuration is refused and nothing changes.
        let e = Config::write(&path, "[budgets.a]\nlimit_usd = \"lots\"\n").unwrap_err();
        assert!(e.message.starts_with("refused"), "{e}");
        assert_eq!(e.field.as_deref(), Some("budgets.a.limit_usd"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        assert!(!bak.exists());

        let second = "# mine\n[budgets.a]\nlimit_usd = \"2\"\n";
        Config::write(&path, second).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), second);
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), first);

        // A file broken by hand is not edited, and never becomes the backup.
        std::fs::write(&path, "[budgets.a\n").unwrap();
        let e = Config::update(&path, |_| Ok(())).unwrap_err();
        assert!(e.message.contains("fix this first"), "{e}");
        Config::write(&path, second).unwrap();
        assert_eq!(
            std::fs::read_to_string(&bak).unwrap(),
            first,
            "the broken file is not kept"
        );

        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn updates_keep_comments_and_formatting() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(
            &path,
            "# my providers\n[providers.openai]   # the real one\n",
        )
        .unwrap();
        Config::update(&path, |doc| {
            let ui = doc.entry("ui").or_insert(toml_edit::table());
            ui["theme"] = toml_edit::value("dark");
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# my providers\n[providers.openai]   # the real one\n"),
            "{text}"
        );
        assert!(text.contains("theme = \"dark\""), "{text}");
        let e = Config::update(&path, |doc| {
            doc["ui"]["theme"] = toml_edit::value("neon");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ui.theme"));
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"dark\""));
    }
}
