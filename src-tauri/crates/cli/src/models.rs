//! `models`: what the catalog knows about a provider's models (context
//! window, output limit, prices and where they came from); `--refresh`
//! fetches the provider's live list first and caches it in the data
//! directory (OpenRouter's list carries prices).

use clap::Args;
use serde_json::json;
use switchboard_engine::catalog::{list_models, save_live};
use switchboard_engine::{Client, Config, DataDir, ModelInfo, PriceSource};

use crate::UsageError;
use crate::ask::key_for;
use crate::output::{error_line, out, warning};

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Provider id (a preset or one from config.toml).
    provider: String,
    /// Fetch the provider's live model list first (needs its key, unless local).
    #[arg(long)]
    refresh: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The live-list cache directory inside the data directory.
pub fn cache_dir(dir: &DataDir) -> std::path::PathBuf {
    dir.path().join("cache").join("models")
}

pub async fn run(args: ModelsArgs) -> Result<bool, UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    let provider = config
        .provider(&args.provider)
        .ok_or_else(|| UsageError(format!("unknown provider {:?}", args.provider)))?;
    let mut catalog = config.catalog();
    catalog.load_live_cache(&cache_dir(&dir));
    let mut ok = true;
    if args.refresh {
        let fetched = match key_for(&provider).await {
            Ok(key) => list_models(&Client::new(), &provider, key.as_ref()).await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok(models) => {
                if let Err(e) = save_live(&cache_dir(&dir), &provider.id, &models) {
                    warning(&format!("could not cache the model list: {e}"));
                }
                catalog.add_live(&provider.id, models);
            }
            Err(e) => {
                error_line(&format!(
                    "could not fetch the model list: {} ({})",
                    e.message, e.kind
                ));
                ok = false;
            }
        }
    }
    let models = catalog.models(&provider);
    if args.json {
        let list: Vec<_> = models.iter().map(model_json).collect();
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ));
    } else {
        out(&format!(
            "{:<40} {:>9} {:>9} {:>12} {:>12} {:>12}  source\n",
            "model", "context", "max out", "in $/Mtok", "out $/Mtok", "cached"
        ));
        for m in &models {
            let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            let (i, o, c) = match &m.price {
                Some(p) => (
                    p.input.usd_per_mtok(),
                    p.output.usd_per_mtok(),
                    p.cached_input.map_or("-".into(), |c| c.usd_per_mtok()),
                ),
                None => ("?".into(), "?".into(), "?".into()),
            };
            out(&format!(
                "{:<40} {:>9} {:>9} {:>12} {:>12} {:>12}  {}\n",
                m.id,
                n(m.context_window),
                n(m.max_output_tokens),
                i,
                o,
                c,
                source(m.source)
            ));
            for t in m.price.iter().flat_map(|p| &p.tiers) {
                out(&format!(
                    "{:<40} prompts over {} tokens: {} in / {} out / {} cached\n",
                    "",
                    t.above_input_tokens,
                    t.rates.input.usd_per_mtok(),
                    t.rates.output.usd_per_mtok(),
                    t.rates
                        .cached_input
                        .map_or_else(|| "-".to_owned(), |c| c.usd_per_mtok()),
                ));
            }
        }
    }
    Ok(ok)
}

fn source(s: PriceSource) -> &'static str {
    match s {
        PriceSource::Bundled => "bundled",
        PriceSource::Config => "config",
        PriceSource::Live => "live",
    }
}

fn model_json(m: &ModelInfo) -> serde_json::Value {
    json!({
        "id": m.id,
        "name": m.name,
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "input_usd_per_mtok": m.price.as_ref().map(|p| p.input.usd_per_mtok()),
        "output_usd_per_mtok": m.price.as_ref().map(|p| p.output.usd_per_mtok()),
        "cached_input_usd_per_mtok": m.price.as_ref().and_then(|p| p.cached_input).map(|c| c.usd_per_mtok()),
        "cache_write_usd_per_mtok": m.price.as_ref().and_then(|p| p.cache_write).map(|c| c.usd_per_mtok()),
        "cache_write_1h_usd_per_mtok": m.price.as_ref().and_then(|p| p.cache_write_1h).map(|c| c.usd_per_mtok()),
        "tiers": m.price.iter().flat_map(|p| &p.tiers).map(|t| json!({
            "above_input_tokens": t.above_input_tokens,
            "input_usd_per_mtok": t.rates.input.usd_per_mtok(),
            "output_usd_per_mtok": t.rates.output.usd_per_mtok(),
            "cached_input_usd_per_mtok": t.rates.cached_input.map(|c| c.usd_per_mtok()),
        })).collect::<Vec<_>>(),
        "source": source(m.source),
    })
}
