//! The edits the desktop app's settings page makes to config.toml:
//! providers (enable, base URL, a custom OpenAI-compatible server) and
//! routes (`[routes.<name>]`). Each edit goes through [`Config::update`],
//! so the file is replaced atomically, keeps its comments and formatting,
//! and is refused (nothing written) when it would not load. Routes are
//! checked too: an edit that would break routes that loaded is refused
//! with the routing error, located at its line and field.
//!
//! ```no_run
//! # use std::path::Path;
//! use switchboard_engine::settings;
//! let path = Path::new("config.toml");
//! settings::set_provider_base_url(path, "lab", "http://10.0.0.5:8000/v1")?;
//! # Ok::<(), switchboard_engine::ConfigError>(())
//! ```

use std::path::Path;

use switchboard_protocol::{NewProvider, RouteSpec, SaveRoute};
use toml_edit::{Array, DocumentMut, Item, Table, TableLike, Value};

use crate::config::{Config, ConfigError};
use crate::provider::presets;
use crate::routing::RoutingConfig;

fn invalid(path: &Path, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        line: None,
        field: Some(field.into()),
        message: message.into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The routes of `text`, or why they do not load (`None`: the file itself
/// does not load, which [`Config::write`] reports).
fn routes_of(path: &Path, text: &str) -> Option<Result<(), (Option<String>, String)>> {
    let cfg = Config::parse(path, text).ok()?;
    Some(
        RoutingConfig::from_config(&cfg)
            .map(|_| ())
            .map_err(|e| (e.field, e.message)),
    )
}

/// Apply `edit` to the config file at `path` and write it, atomically and
/// only if it loads; refused as well when it would break routes (a routing
/// error the file did not have before).
pub fn apply(
    path: &Path,
    edit: impl FnOnce(&mut DocumentMut) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    let mut located: Option<ConfigError> = None;
    let result = Config::update(path, |doc| {
        let before = routes_of(path, &doc.to_string());
        if let Err(e) = edit(doc) {
            let message = e.message.clone();
            located = Some(e);
            return Err(message);
        }
        let text = doc.to_string();
        if let Some(Err((field, message))) = routes_of(path, &text)
            && before.as_ref().and_then(|b| b.as_ref().err())
                != Some(&(field.clone(), message.clone()))
        {
            // Located in the edited text, as Config::write does.
            let cfg = Config::parse(path, &text).unwrap_or_default();
            if let Err(e) = RoutingConfig::from_config(&cfg) {
                located = Some(ConfigError {
                    message: format!(
                        "refused to write a configuration whose routes would not load (nothing was changed): {}",
                        e.message
                    ),
                    ..e
                });
            }
            return Err(message);
        }
        Ok(())
    });
    result.map_err(|e| located.unwrap_or(e))
}

/// `[providers]`, created (as a header-less parent) when missing.
fn providers<'d>(
    path: &Path,
    doc: &'d mut DocumentMut,
) -> Result<&'d mut dyn TableLike, ConfigError> {
    parent(path, doc, "providers")
}

fn parent<'d>(
    path: &Path,
    doc: &'d mut DocumentMut,
    key: &str,
) -> Result<&'d mut dyn TableLike, ConfigError> {
    let item = doc.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    item.as_table_like_mut()
        .ok_or_else(|| invalid(path, key, "is not a table"))
}

/// `[providers.<id>]`, created when missing.
fn provider_table<'d>(
    path: &Path,
    doc: &'d mut DocumentMut,
    id: &str,
) -> Result<&'d mut dyn TableLike, ConfigError> {
    let field = format!("providers.{id}");
    providers(path, doc)?
        .entry(id)
        .or_insert(Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| invalid(path, field, "is not a table"))
}

/// A provider id Switchboard knows: configured (enabled or not) or a preset.
fn known_provider(path: &Path, id: &str) -> Result<(), ConfigError> {
    let cfg = Config::load(path)?;
    if cfg.providers.contains_key(id)
        || cfg.disabled.contains_key(id)
        || (id != "custom" && presets().contains_key(id))
    {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("providers.{id}"),
            format!("unknown provider {id:?}"),
        ))
    }
}

/// Turn provider `id` on or off (`enabled = false`; on is the default, so
/// turning it on removes the key).
pub fn set_provider_enabled(path: &Path, id: &str, enabled: bool) -> Result<Config, ConfigError> {
    known_provider(path, id)?;
    apply(path, |doc| {
        let table = provider_table(path, doc, id)?;
        if enabled {
            table.remove("enabled");
        } else {
            table.insert("enabled", toml_edit::value(false));
        }
        Ok(())
    })
}

/// Point provider `id` at `base_url` (validated on write: an http(s) URL).
pub fn set_provider_base_url(path: &Path, id: &str, base_url: &str) -> Result<Config, ConfigError> {
    known_provider(path, id)?;
    let url = base_url.trim();
    let field = format!("providers.{id}.base_url");
    if url.is_empty() {
        return Err(invalid(
            path,
            field,
            "missing: e.g. \"http://localhost:8000/v1\"",
        ));
    }
    apply(path, |doc| {
        provider_table(path, doc, id)?.insert("base_url", toml_edit::value(url));
        Ok(())
    })
}

/// Add a custom OpenAI-compatible provider (`kind = "openai"`).
pub fn add_provider(path: &Path, new: &NewProvider) -> Result<Config, ConfigError> {
    let id = new.id.trim();
    let field = format!("providers.{id}");
    if !valid_name(id) {
        return Err(invalid(
            path,
            field,
            "a provider id uses letters, digits, '-', '_' or '.' (at most 64)",
        ));
    }
    let cfg = Config::load(path)?;
    if cfg.providers.contains_key(id) || cfg.disabled.contains_key(id) || presets().contains_key(id)
    {
        return Err(invalid(
            path,
            field,
            format!("{id:?} already exists: change its base URL in its row instead"),
        ));
    }
    let url = new.base_url.trim();
    if url.is_empty() {
        return Err(invalid(
            path,
            format!("{field}.base_url"),
            "missing: e.g. \"http://localhost:8000/v1\"",
        ));
    }
    apply(path, |doc| {
        let mut t = Table::new();
        t.insert("kind", toml_edit::value("openai"));
        t.insert("base_url", toml_edit::value(url));
        providers(path, doc)?.insert(id, Item::Table(t));
        Ok(())
    })
}

const STRATEGIES: &[&str] = &["ordered", "cheapest", "fastest", "balanced"];
const TIMEOUTS: &[&str] = &[
    "first_token_timeout_ms",
    "idle_timeout_ms",
    "total_timeout_ms",
];

/// Check what the editor sends before touching the file, so each mistake
/// is named by its field.
fn check_route(path: &Path, route: &RouteSpec) -> Result<(), ConfigError> {
    let at = |key: &str| format!("routes.{}.{key}", route.name);
    if !valid_name(&route.name) {
        return Err(invalid(
            path,
            format!("routes.{}", route.name),
            "a route name uses letters, digits, '-', '_' or '.' (at most 64)",
        ));
    }
    if !STRATEGIES.contains(&route.strategy.as_str()) {
        return Err(invalid(
            path,
            at("strategy"),
            format!(
                "unknown strategy {:?} (ordered, cheapest, fastest or balanced)",
                route.strategy
            ),
        ));
    }
    if route.targets.is_empty() {
        return Err(invalid(
            path,
            at("targets"),
            "a route needs at least one target",
        ));
    }
    for t in &route.targets {
        if !t
            .split_once(':')
            .is_some_and(|(p, m)| !p.trim().is_empty() && !m.trim().is_empty())
        {
            return Err(invalid(
                path,
                at("targets"),
                format!("target {t:?} is not provider:model (e.g. openai:gpt-6-luna)"),
            ));
        }
    }
    let timeouts = [
        route.first_token_timeout_ms,
        route.idle_timeout_ms,
        route.total_timeout_ms,
    ];
    for (key, ms) in TIMEOUTS.iter().zip(timeouts) {
        if ms.is_some_and(|ms| ms == 0 || ms > 86_400_000) {
            return Err(invalid(
                path,
                at(key),
                "a timeout is 1 to 86400000 ms (leave it empty for the default)",
            ));
        }
    }
    Ok(())
}

/// The target a route's `targets` entry names (`"p:m"` or `{ target = "p:m", ... }`).
fn target_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s.value()),
        Value::InlineTable(t) => t.get("target").and_then(Value::as_str),
        _ => None,
    }
}

/// Create or replace a route (renaming it when `previous` names another).
/// Keys the editor does not show (retries, weights, ...) and the settings
/// of targets written as tables are kept.
pub fn save_route(path: &Path, request: &SaveRoute) -> Result<Config, ConfigError> {
    let mut route = request.route.clone();
    route.name = route.name.trim().to_owned();
    route.targets = route.targets.iter().map(|t| t.trim().to_owned()).collect();
    check_route(path, &route)?;
    let previous = request.previous.as_deref().map(str::trim);
    apply(path, |doc| {
        let routes = parent(path, doc, "routes")?;
        if previous != Some(route.name.as_str()) && routes.contains_key(&route.name) {
            return Err(invalid(
                path,
                format!("routes.{}", route.name),
                format!("a route named {:?} already exists", route.name),
            ));
        }
        let mut table = match previous.and_then(|p| routes.remove(p)) {
            Some(Item::Table(t)) => t,
            Some(Item::Value(Value::InlineTable(t))) => t.into_table(),
            _ => Table::new(),
        };
        table.set_implicit(false);
        table.insert("strategy", toml_edit::value(route.strategy.as_str()));
        let old: Vec<Value> = table
            .get("targets")
            .and_then(Item::as_array)
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default();
        let mut targets = Array::new();
        for t in &route.targets {
            let kept = old
                .iter()
                .find(|v| matches!(v, Value::InlineTable(_)) && target_of(v) == Some(t.as_str()));
            match kept {
                Some(v) => targets.push_formatted(v.clone()),
                None => targets.push(t.as_str()),
            }
        }
        targets.fmt();
        table.insert("targets", toml_edit::value(targets));
        let timeouts = [
            route.first_token_timeout_ms,
            route.idle_timeout_ms,
            route.total_timeout_ms,
        ];
        for (key, ms) in TIMEOUTS.iter().zip(timeouts) {
            match ms.and_then(|ms| i64::try_from(ms).ok()) {
                Some(ms) => {
                    table.insert(key, toml_edit::value(ms));
                }
                None => {
                    table.remove(key);
                }
            }
        }
        routes.insert(&route.name, Item::Table(table));
        Ok(())
    })
}

/// Remove `[routes.<name>]`.
pub fn delete_route(path: &Path, name: &str) -> Result<Config, ConfigError> {
    apply(path, |doc| {
        let routes = parent(path, doc, "routes")?;
        if routes.remove(name).is_none() {
            return Err(invalid(
                path,
                format!("routes.{name}"),
                format!("there is no route {name:?}"),
            ));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, targets: &[&str]) -> RouteSpec {
        RouteSpec {
            name: name.into(),
            strategy: "ordered".into(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            first_token_timeout_ms: Some(5000),
            idle_timeout_ms: None,
            total_timeout_ms: None,
        }
    }

    fn setup(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const LAB: &str =
        "# mine\n[providers.lab]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

    #[test]
    fn providers_are_enabled_pointed_and_added_keeping_the_rest() {
        let (_d, path) = setup(LAB);
        let cfg = set_provider_enabled(&path, "lab", false).unwrap();
        assert!(cfg.disabled.contains_key("lab") && !cfg.providers.contains_key("lab"));
        let cfg = set_provider_enabled(&path, "lab", true).unwrap();
        assert!(cfg.providers.contains_key("lab"));
        let cfg = set_provider_enabled(&path, "openai", false).unwrap();
        assert!(cfg.disabled.contains_key("openai"));
        let cfg = set_provider_base_url(&path, "lab", "http://10.0.0.5:8000/v1").unwrap();
        assert_eq!(cfg.providers["lab"].base_url, "http://10.0.0.5:8000/v1");
        let cfg = add_provider(
            &path,
            &NewProvider {
                id: "box".into(),
                base_url: "http://192.168.1.2:1234/v1".into(),
            },
        )
        .unwrap();
        assert_eq!(cfg.providers["box"].base_url, "http://192.168.1.2:1234/v1");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# mine\n[providers.lab]\n"), "{text}");
        assert!(
            text.contains("[providers.box]\nkind = \"openai\""),
            "{text}"
        );

        let e = add_provider(
            &path,
            &NewProvider {
                id: "groq".into(),
                base_url: "http://x".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("providers.groq"));
        let e = set_provider_enabled(&path, "nope", false).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("providers.nope"));
    }

    #[test]
    fn a_bad_base_url_is_refused_with_its_line_and_nothing_is_written() {
        let (_d, path) = setup(LAB);
        let before = std::fs::read(&path).unwrap();
        let e = set_provider_base_url(&path, "lab", "ftp://x").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("providers.lab.base_url"));
        assert_eq!(e.line, Some(4));
        assert!(
            e.to_string()
                .contains("config.toml:4: providers.lab.base_url: "),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn routes_are_created_renamed_and_deleted_keeping_target_settings() {
        let text = format!(
            "{LAB}\n[routes.fast]\nstrategy = \"fastest\"\nretries = 2\ntargets = [{{ target = \"lab:a\", max_tokens = 500 }}, \"lab:b\"]\n"
        );
        let (_d, path) = setup(&text);
        let cfg = save_route(
            &path,
            &SaveRoute {
                previous: None,
                route: spec("backup", &["lab:b", "openai:gpt-x"]),
            },
        )
        .unwrap();
        let routing = RoutingConfig::from_config(&cfg).unwrap();
        let backup = routing.route("backup").unwrap();
        assert_eq!(backup.targets.len(), 2);
        assert_eq!(backup.targets[0].timeouts.first_token.as_millis(), 5000);

        let mut renamed = spec("quick", &["lab:b", "lab:a"]);
        renamed.strategy = "balanced".into();
        renamed.first_token_timeout_ms = None;
        save_route(
            &path,
            &SaveRoute {
                previous: Some("fast".into()),
                route: renamed,
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("[routes.fast]"), "{text}");
        assert!(text.contains("[routes.quick]"), "{text}");
        assert!(text.contains("retries = 2"), "{text}");
        assert!(
            text.contains("{ target = \"lab:a\", max_tokens = 500 }"),
            "{text}"
        );
        assert!(
            text.contains("[routes.backup]\nstrategy = \"ordered\""),
            "{text}"
        );

        let e = save_route(
            &path,
            &SaveRoute {
                previous: None,
                route: spec("quick", &["lab:a"]),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("already exists"), "{e}");
        let e = save_route(
            &path,
            &SaveRoute {
                previous: None,
                route: spec("x", &["nonsense"]),
            },
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.x.targets"));

        let cfg = delete_route(&path, "quick").unwrap();
        assert!(!cfg.routes.contains_key("quick"));
        assert!(delete_route(&path, "quick").is_err());
    }

    #[test]
    fn an_edit_that_would_break_routes_is_refused() {
        let text = format!("{LAB}\n[routes.r]\ntargets = [\"lab:a\"]\n");
        let (_d, path) = setup(&text);
        // Disabling a provider a route uses does not break the route: its
        // target stays, and is skipped (policy: disabled in config).
        let cfg = set_provider_enabled(&path, "lab", false).unwrap();
        let routing = crate::routing::RoutingConfig::from_config(&cfg).unwrap();
        assert!(!routing.route("r").unwrap().targets[0].provider.enabled);
        let cfg = set_provider_enabled(&path, "lab", true).unwrap();
        assert!(cfg.providers["lab"].enabled);
        let before = std::fs::read(&path).unwrap();
        let e = save_route(
            &path,
            &SaveRoute {
                previous: None,
                route: spec("s", &["ghost:model"]),
            },
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("routes.s.targets"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
