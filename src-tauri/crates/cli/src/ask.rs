//! `ask`: one prompt to every target in parallel, streamed to the terminal
//! (labelled) or reported as one JSON array.

use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use switchboard_engine::{
    AttemptResult, ChatRequest, Client, Config, DataDir, ErrorKind, KeyError, KeyStore,
    ProviderConfig, ProviderError, Secret, StreamEvent, Timeouts, key_hint, run_attempt,
};

use switchboard_engine::catalog::{list_models, save_live};

use crate::UsageError;
use crate::output::{out, warning};

#[derive(Debug, Args)]
pub struct AskArgs {
    /// A target `provider:model` (repeat for several; they run in parallel).
    #[arg(short = 'm', long = "model", value_name = "TARGET")]
    targets: Vec<String>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most output tokens.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling.
    #[arg(long)]
    top_p: Option<f32>,
    /// Stop sequence (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Print one JSON array instead of streaming text.
    #[arg(long)]
    json: bool,
    /// The prompt.
    prompt: String,
}

/// One target, resolved.
struct Target {
    label: String,
    provider: ProviderConfig,
    model: String,
}

fn parse_target(config: &Config, raw: &str) -> Result<Target, UsageError> {
    let Some((provider_id, model)) = raw
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        return Err(UsageError(format!(
            "target {raw:?} is not provider:model (e.g. openai:gpt-6-luna)"
        )));
    };
    let provider = config.provider(provider_id).ok_or_else(|| {
        let mut known: Vec<String> = config.providers.keys().cloned().collect();
        known.extend(switchboard_engine::provider::presets().keys().filter(|k| *k != "custom").cloned());
        known.sort();
        known.dedup();
        UsageError(format!(
            "unknown provider {provider_id:?} in target {raw:?}; configure it in {} or use one of: {}",
            config.path.display(),
            known.join(", ")
        ))
    })?;
    Ok(Target {
        label: raw.to_owned(),
        provider,
        model: model.to_owned(),
    })
}

/// The key for `provider`: `Ok(None)` only for local servers that need none.
pub async fn key_for(provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
    let id = provider.id.clone();
    let looked_up = tokio::task::spawn_blocking(move || KeyStore::new().get(&id))
        .await
        .unwrap_or_else(|e| {
            Err(KeyError::Platform {
                reason: e.to_string(),
            })
        });
    let no_key = |detail: String| {
        ProviderError::new(
            ErrorKind::Auth,
            &provider.id,
            format!("no API key for provider \"{}\": {detail}", provider.id),
        )
    };
    match looked_up {
        Ok(Some((key, _))) => Ok(Some(key)),
        Ok(None) if provider.local => Ok(None),
        Ok(None) => Err(no_key(key_hint(&provider.id))),
        Err(_) if provider.local => Ok(None),
        Err(e) => Err(no_key(e.to_string())),
    }
}

pub async fn run(args: AskArgs) -> Result<bool, UsageError> {
    if args.targets.is_empty() {
        return Err(UsageError(
            "give at least one target: -m provider:model".into(),
        ));
    }
    if args.prompt.trim().is_empty() {
        return Err(UsageError("the prompt is empty".into()));
    }
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    let targets = args
        .targets
        .iter()
        .map(|t| parse_target(&config, t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut catalog = config.catalog();
    catalog.load_live_cache(&crate::models::cache_dir(&dir));
    let client = Client::new();
    // Providers whose model list carries prices (OpenRouter): fetch it once
    // when a target's price is unknown and a key is at hand.
    for t in &targets {
        if t.provider.live_prices
            && catalog.price(&t.provider, &t.model).is_none()
            && let Ok(key) = key_for(&t.provider).await
            && let Ok(models) = list_models(&client, &t.provider, key.as_ref()).await
        {
            if let Err(e) = save_live(&crate::models::cache_dir(&dir), &t.provider.id, &models) {
                warning(&format!(
                    "could not cache the model list of {}: {e}",
                    t.provider.id
                ));
            }
            catalog.add_live(&t.provider.id, models);
        }
    }

    let multi = targets.len() > 1;
    let streaming_text = !args.json;
    let runs = targets.iter().map(|t| {
        let client = &client;
        let catalog = &catalog;
        let args = &args;
        async move {
            let mut request = ChatRequest::new(&t.model, &args.prompt);
            request.system = args.system.clone();
            request.params.max_tokens = args.max_tokens;
            request.params.temperature = args.temperature;
            request.params.top_p = args.top_p;
            request.params.stop = args.stop.clone();
            let price = catalog.price(&t.provider, &t.model);
            let key = match key_for(&t.provider).await {
                Ok(k) => k,
                Err(e) => {
                    let mut acc = switchboard_engine::Accumulator::new(&t.provider.id, &t.model);
                    acc.fail(e);
                    return acc.finish(Duration::ZERO, price.as_ref(), request.input_chars());
                }
            };
            let mut printer = LinePrinter::new(if multi { Some(t.label.clone()) } else { None });
            let sent_key = key.is_some();
            let mut result = run_attempt(
                client,
                &t.provider,
                key.as_ref(),
                &request,
                price.as_ref(),
                Timeouts::default(),
                |ev| {
                    if streaming_text && let StreamEvent::TextDelta(text) = &ev.event {
                        printer.push(text);
                    }
                },
            )
            .await;
            if streaming_text {
                printer.flush();
            }
            // A local server that wants a key after all: say how to give it one.
            if let Some(e) = result
                .error
                .as_mut()
                .filter(|e| e.kind == ErrorKind::Auth && !sent_key)
            {
                e.message = format!(
                    "{} (no key was sent: {})",
                    e.message,
                    key_hint(&t.provider.id)
                );
            }
            result
        }
    });
    let results: Vec<AttemptResult> = futures::future::join_all(runs).await;
    let all_ok = results.iter().all(AttemptResult::is_ok);
    if args.json {
        let array: Vec<Value> = targets
            .iter()
            .zip(&results)
            .map(|(t, r)| result_json(&t.label, r))
            .collect();
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&Value::Array(array)).unwrap_or_default()
        ));
    } else {
        if !multi {
            out("\n");
        }
        for (t, r) in targets.iter().zip(&results) {
            out(&format!("{}\n", summary_line(&t.label, r)));
        }
    }
    Ok(all_ok)
}

/// Streams text to stdout; with a label, whole lines prefixed `label │ `.
struct LinePrinter {
    label: Option<String>,
    partial: String,
}

impl LinePrinter {
    fn new(label: Option<String>) -> Self {
        Self {
            label,
            partial: String::new(),
        }
    }

    fn push(&mut self, text: &str) {
        let Some(label) = &self.label else {
            out(text);
            return;
        };
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            out(&format!("{label} │ {line}"));
        }
    }

    fn flush(&mut self) {
        if let Some(label) = &self.label
            && !self.partial.is_empty()
        {
            out(&format!(
                "{label} │ {}\n",
                std::mem::take(&mut self.partial)
            ));
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn error_json(e: &ProviderError) -> Value {
    json!({
        "kind": e.kind.as_str(),
        "message": e.message,
        "status": e.status,
        "retry_after_s": e.retry_after.map(|d| d.as_secs_f64()),
    })
}

fn usage_json(r: &AttemptResult) -> Value {
    json!({
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "cached_input_tokens": r.usage.cached_input_tokens,
        "reasoning_tokens": r.usage.reasoning_tokens,
    })
}

fn result_json(label: &str, r: &AttemptResult) -> Value {
    let cost = r.cost.map(|c| c.total.as_f64());
    let estimated = r.cost.is_some_and(|c| c.estimated());
    let attempt = json!({
        "provider": r.provider,
        "model": r.model,
        "outcome": if r.is_ok() { "ok" } else { "error" },
        "error": r.error.as_ref().map(error_json),
        "ttft_ms": r.timing.ttft.map(ms),
        "total_ms": ms(r.timing.total),
        "usage": usage_json(r),
        "cost_usd": cost,
        "cost_estimated": estimated,
    });
    json!({
        "target": label,
        "provider": r.provider,
        "model": r.model,
        "text": r.text,
        "reasoning": if r.reasoning.is_empty() { Value::Null } else { Value::String(r.reasoning.clone()) },
        "finish_reason": r.finish_reason,
        "usage": usage_json(r),
        "cost_usd": cost,
        "cost_estimated": estimated,
        "cost_source": r.cost.map(|c| c.source),
        "ttft_ms": r.timing.ttft.map(ms),
        "total_ms": ms(r.timing.total),
        "tokens_per_s": r.timing.tokens_per_s.map(|t| (t * 10.0).round() / 10.0),
        "error": r.error.as_ref().map(error_json),
        "attempts": [attempt],
    })
}

fn summary_line(label: &str, r: &AttemptResult) -> String {
    let mut parts = vec![format!("── {label}")];
    if let Some(e) = &r.error {
        let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        parts.push(format!("error {}{status}: {}", e.kind, e.message));
        if let Some(ra) = e.retry_after {
            parts.push(format!("retry after {} s", ra.as_secs_f64()));
        }
    }
    if let Some(t) = r.timing.ttft {
        parts.push(format!("{:.0} ms to first token", ms(t)));
    }
    if let Some(tps) = r.timing.tokens_per_s {
        parts.push(format!("{tps:.1} tok/s"));
    }
    parts.push(format!("{:.2} s", r.timing.total.as_secs_f64()));
    let tok = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
    if !r.usage.is_empty() {
        parts.push(format!(
            "{} in / {} out tokens",
            tok(r.usage.input_tokens),
            tok(r.usage.output_tokens)
        ));
    }
    match r.cost {
        Some(c) if c.estimated() => parts.push(format!("{} est.", c.total)),
        Some(c) => parts.push(c.total.to_string()),
        None => parts.push("cost unknown (no price for this model)".into()),
    }
    parts.join(" · ")
}
