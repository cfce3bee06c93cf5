//! From a request's `model` (and OpenRouter-style `models: [...]`) to the
//! route the engine runs.
//!
//! One name resolves as the app and the CLI resolve a target
//! ([`RoutingConfig::target`]): `@route`, or `provider:model` at a
//! configured or preset provider (any model id: the provider decides,
//! and a 404 from it comes back as one). A bare model id (`gpt-6-luna`,
//! what most tools send by default) is taken as `provider:model` when
//! exactly one provider's catalog lists it. A model named directly is
//! tried once (the caller's SDK retries, seeing the provider's own
//! `Retry-After`); a route keeps its retries and fallbacks. Several names
//! are a fallback chain, tried in order; a route among them contributes
//! its targets in the order it would try them right now.
//!
//! A name that resolves to nothing is a 400 whose message names the
//! nearest known models and routes.
//!
//! [`RoutingConfig::target`]: switchboard_engine::routing::RoutingConfig::target

use switchboard_engine::ChatRequest;
use switchboard_engine::routing::{
    CooldownSettings, RetrySettings, Route, RouteTarget, Strategy, TargetError, Weights,
};

use crate::errors::ApiError;
use crate::state::Generation;

/// How many suggestions an unknown model's error names.
const SUGGESTIONS: usize = 3;

/// The route for `names` (the first is tried first).
pub(crate) fn route_for(
    generation: &Generation,
    names: &[String],
    chat: &ChatRequest,
) -> Result<Route, ApiError> {
    let mut routes = Vec::with_capacity(names.len());
    for name in names {
        routes.push(resolve_one(generation, name.trim())?);
    }
    match routes.len() {
        0 => Err(ApiError::bad_request(
            "missing_model",
            "`model` is required: a provider:model, an @route, or a model id",
        )),
        1 => Ok(routes.remove(0)),
        _ => {
            let mut targets: Vec<RouteTarget> = Vec::new();
            for route in &routes {
                let ordered: Vec<RouteTarget> = if route.is_explicit() {
                    route.targets.clone()
                } else {
                    generation
                        .router
                        .plan(route, chat)
                        .entries
                        .into_iter()
                        .map(|e| e.target)
                        .collect()
                };
                for t in ordered {
                    if !targets.iter().any(|have| have.label() == t.label()) {
                        targets.push(t);
                    }
                }
            }
            Ok(Route {
                name: None,
                strategy: Strategy::Ordered,
                targets,
                retry: RetrySettings::default(),
                cooldown: CooldownSettings::default(),
                weights: Weights::default(),
            })
        }
    }
}

fn resolve_one(generation: &Generation, raw: &str) -> Result<Route, ApiError> {
    let unknown = |what: String| {
        ApiError::bad_request(
            "model_not_found",
            format!(
                "{what}; nearest known: {}",
                nearest(&generation.labels, raw, SUGGESTIONS).join(", ")
            ),
        )
    };
    match generation.routing.target(&generation.config, raw).map(once) {
        // A disabled provider resolves too: the router's policy refuses
        // it, as it does in the app (403, naming why).
        Ok(route) => Ok(route),
        Err(TargetError::NotATarget { .. }) => {
            let found = generation.model_index.get(raw).map(Vec::as_slice);
            match found {
                Some([provider]) => {
                    let label = format!("{provider}:{raw}");
                    generation
                        .routing
                        .target(&generation.config, &label)
                        .map(once)
                        .map_err(|e| unknown(e.to_string()))
                }
                Some(several) if !several.is_empty() => Err(ApiError::bad_request(
                    "ambiguous_model",
                    format!(
                        "model \"{raw}\" is offered by several providers: name one of {}",
                        several
                            .iter()
                            .map(|p| format!("{p}:{raw}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                _ => Err(unknown(format!(
                    "unknown model \"{raw}\": not an @route, a provider:model, or a model id \
                     in the catalog"
                ))),
            }
        }
        Err(e @ (TargetError::UnknownRoute { .. } | TargetError::UnknownProvider { .. })) => {
            Err(unknown(format!("unknown model \"{raw}\": {e}")))
        }
    }
}

/// A model named directly is tried once: the caller's SDK retries (and
/// sees the provider's `Retry-After`), so the Local API does not retry
/// under it as the app and the CLI do for a lone target (`[retries]`).
/// A route keeps its own retries.
fn once(mut route: Route) -> Route {
    if route.is_explicit() {
        for t in &mut route.targets {
            t.retries = 0;
        }
    }
    route
}

/// The `n` labels nearest to `raw` (edit distance, ignoring case; a label
/// is also compared by its model id alone).
pub(crate) fn nearest(labels: &[String], raw: &str, n: usize) -> Vec<String> {
    let wanted = raw.to_ascii_lowercase();
    let mut scored: Vec<(usize, &String)> = labels
        .iter()
        .map(|label| {
            let l = label.to_ascii_lowercase();
            let whole = distance(&wanted, &l);
            let model = l
                .split_once(':')
                .map_or(whole, |(_, m)| distance(&wanted, m));
            (whole.min(model), label)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, l)| l.clone()).collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_rank_by_edit_distance_and_model_ids() {
        let labels: Vec<String> = ["oa:oa-model", "an:an-model", "gm:gm-model", "@fast"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest(&labels, "oa:oa-modle", 1), vec!["oa:oa-model"]);
        assert_eq!(nearest(&labels, "an-model", 1), vec!["an:an-model"]);
        assert_eq!(nearest(&labels, "@fats", 1), vec!["@fast"]);
        assert_eq!(nearest(&labels, "x", 9).len(), 4);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
