//! `GET /v1/models`: every model the catalog knows at every provider a
//! request may name (configured ones and presets, disabled ones left
//! out), as `provider:model`, with its context window and prices, and
//! every route as `@name` (its context window: the smallest of its
//! targets'). Prices are USD per token as decimal strings, OpenRouter's
//! `pricing` shape; `usd_per_mtok` gives them per million tokens as
//! `config.toml` writes them.
//!
//! A request that carries `anthropic-version` (the Anthropic SDK) gets
//! Anthropic's list shape instead (`type: "model"`, `display_name`,
//! `has_more`).
//!
//! Both lists are made once per loaded configuration (a [`Generation`],
//! off the async threads) and served as they are: a request never walks
//! the catalog, and a changed `config.toml` brings new lists with its new
//! generation.

use serde_json::{Value, json};
use switchboard_engine::{ModelInfo, Price};

use switchboard_engine::routing::RoutingConfig;
use switchboard_engine::{Catalog, Config};

use crate::state::providers;

/// USD per token as an exact decimal string.
fn per_token(p: Price) -> String {
    let pico = p.pico_per_token();
    let (int, frac) = (pico / 1_000_000_000_000, pico % 1_000_000_000_000);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:012}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

fn pricing(m: &ModelInfo) -> Value {
    match m.price.as_ref() {
        Some(p) => json!({
            "prompt": per_token(p.input),
            "completion": per_token(p.output),
            "input_cache_read": p.cached_input.map(per_token),
            "usd_per_mtok": {
                "input": p.input.usd_per_mtok(),
                "output": p.output.usd_per_mtok(),
                "cached_input": p.cached_input.map(Price::usd_per_mtok),
            },
        }),
        None => Value::Null,
    }
}

/// The list, in OpenAI's shape (or Anthropic's).
pub(crate) fn list(
    config: &Config,
    catalog: &Catalog,
    routing: &RoutingConfig,
    anthropic: bool,
) -> Vec<u8> {
    let mut data: Vec<Value> = Vec::new();
    let mut windows: std::collections::HashMap<String, Option<u64>> =
        std::collections::HashMap::new();
    for provider in providers(config) {
        for m in catalog.models(&provider) {
            let id = format!("{}:{}", provider.id, m.id);
            windows.insert(id.clone(), m.context_window);
            data.push(if anthropic {
                json!({
                    "type": "model",
                    "id": id,
                    "display_name": m.name.clone().unwrap_or_else(|| m.id.clone()),
                    "created_at": "1970-01-01T00:00:00Z",
                })
            } else {
                json!({
                    "id": id,
                    "object": "model",
                    "created": 0,
                    "owned_by": provider.id,
                    "name": m.name.clone().unwrap_or_else(|| m.id.clone()),
                    "context_length": m.context_window,
                    "max_output_tokens": m.max_output_tokens,
                    "pricing": pricing(&m),
                })
            });
        }
    }
    for (name, route) in &routing.routes {
        let targets: Vec<String> = route.targets.iter().map(|t| t.label()).collect();
        let window = route
            .targets
            .iter()
            .map(|t| {
                windows.get(&t.label()).copied().flatten().or_else(|| {
                    catalog
                        .lookup(&t.provider, &t.model)
                        .and_then(|m| m.context_window)
                })
            })
            .collect::<Option<Vec<u64>>>()
            .and_then(|w| w.into_iter().min());
        data.push(if anthropic {
            json!({
                "type": "model",
                "id": format!("@{name}"),
                "display_name": format!("Route {name}"),
                "created_at": "1970-01-01T00:00:00Z",
            })
        } else {
            json!({
                "id": format!("@{name}"),
                "object": "model",
                "created": 0,
                "owned_by": "switchboard-route",
                "name": format!("Route {name}"),
                "context_length": window,
                "route": { "strategy": route.strategy.as_str(), "targets": targets },
            })
        });
    }
    let doc = if anthropic {
        let id = |v: Option<&Value>| v.and_then(|m| m.get("id")).cloned();
        json!({
            "first_id": id(data.first()),
            "last_id": id(data.last()),
            "has_more": false,
            "data": data,
        })
    } else {
        json!({ "object": "list", "data": data })
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_per_token_are_exact_decimals() {
        assert_eq!(
            per_token(Price::from_usd_per_mtok("2.50").unwrap()),
            "0.0000025"
        );
        assert_eq!(
            per_token(Price::from_usd_per_mtok("15").unwrap()),
            "0.000015"
        );
        assert_eq!(per_token(Price::ZERO), "0");
    }
}
