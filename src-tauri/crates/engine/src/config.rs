//! `config.toml`: providers and their models. Validated on load; every error
//! names the file, the line and the field, and unknown keys are reported
//! as warnings rather than silently ignored.

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

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    routes: BTreeMap<String, toml::Table>,
    #[serde(default)]
    budgets: BTreeMap<String, toml::Table>,
    #[serde(default)]
    ui: toml::Table,
}

#[derive(Debug, Deserialize)]
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
    models: Vec<ModelEntry>,
}

/// The loaded configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Providers the user configured, by id (disabled ones left out).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Model entries per provider id.
    pub models: BTreeMap<String, Vec<ModelEntry>>,
    /// `[routes.<name>]` tables as written; the routing module reads them.
    pub routes: BTreeMap<String, toml::Table>,
    /// `[budgets.<name>]` tables as written; the ledger module reads them.
    pub budgets: BTreeMap<String, toml::Table>,
    /// The `[ui]` table as written (preferences of the desktop app).
    pub ui: toml::Table,
    /// The file's text, to locate errors found by the modules above.
    pub text: String,
    /// Keys the file has that Switchboard does not know (`providers.x.colour`).
    pub warnings: Vec<String>,
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
            };
            if !p.models.is_empty() {
                cfg.models.insert(id.clone(), p.models);
            }
            if p.enabled != Some(false) {
                cfg.providers.insert(id, config);
            }
        }
        Ok(cfg)
    }

    /// The provider `id`: configured, else the bundled preset of that name.
    pub fn provider(&self, id: &str) -> Option<ProviderConfig> {
        self.providers
            .get(id)
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
    }
}
