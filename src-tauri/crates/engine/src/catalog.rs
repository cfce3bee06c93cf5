//! The model catalog: which models each provider offers, their context
//! window and output limit, and their prices. Three sources, in order of
//! precedence: the user's `config.toml`, live lists fetched from providers
//! (OpenRouter's carries prices), and the bundled table `data/models.toml`.
//!
//! A [`ModelPrice`] has base [`Rates`] (input, output, cache reads, cache
//! writes for five minutes and one hour) and long-context [`PriceTier`]s
//! that replace them for prompts above a size. Rates a table leaves out
//! follow the vendor's documented multipliers; rates it lists always win.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attach::Accepts;
use crate::client::Client;
use crate::error::ProviderError;
use crate::keys::Secret;
use crate::money::Price;
use crate::provider::{self, ProviderConfig, ProviderKind};

/// What a model costs per token at one prompt size: the base rates of a
/// [`ModelPrice`], or those of one of its long-context tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Prompt tokens (not cached, not written to a cache).
    pub input: Price,
    /// Generated tokens, reasoning included.
    pub output: Price,
    /// Prompt tokens read from the provider's cache; the input price
    /// applies when absent.
    pub cached_input: Option<Price>,
    /// Prompt tokens written to the cache with a five-minute lifetime;
    /// [`CACHE_WRITE_5M`] × input when absent.
    pub cache_write: Option<Price>,
    /// Prompt tokens written to the cache with a one-hour lifetime;
    /// [`CACHE_WRITE_1H`] × input when absent.
    pub cache_write_1h: Option<Price>,
}

/// Anthropic's cache-write multipliers of the input rate (`(numerator,
/// denominator)`), used when the price table lists no explicit write rate:
/// 1.25× for a five-minute lifetime...
pub const CACHE_WRITE_5M: (u64, u64) = (5, 4);
/// ...and 2× for one hour.
pub const CACHE_WRITE_1H: (u64, u64) = (2, 1);
/// Anthropic's cache-read multiplier of the input rate, used for models of
/// the Anthropic protocol whose entry lists no cached rate.
pub const ANTHROPIC_CACHE_READ: (u64, u64) = (1, 10);

impl Rates {
    /// The exact cost of `tokens` cache reads, in pico-dollars.
    pub fn cache_read_pico(&self, tokens: u64) -> u128 {
        self.cached_input.unwrap_or(self.input).cost_pico(tokens)
    }

    /// The cost of `tokens` five-minute cache writes, in pico-dollars: the
    /// listed rate, else 1.25× input (exact to the pico-dollar).
    pub fn cache_write_pico(&self, tokens: u64) -> u128 {
        self.cache_write.map_or_else(
            || scaled(self.input.cost_pico(tokens), CACHE_WRITE_5M),
            |p| p.cost_pico(tokens),
        )
    }

    /// The cost of `tokens` one-hour cache writes, in pico-dollars: the
    /// listed rate, else 2× input.
    pub fn cache_write_1h_pico(&self, tokens: u64) -> u128 {
        self.cache_write_1h.map_or_else(
            || scaled(self.input.cost_pico(tokens), CACHE_WRITE_1H),
            |p| p.cost_pico(tokens),
        )
    }
}

fn scaled(pico: u128, (num, den): (u64, u64)) -> u128 {
    pico * u128::from(num) / u128::from(den.max(1))
}

/// Rates that replace the base rates for a whole request whose prompt
/// (input, cache reads and cache writes together) is longer than
/// `above_input_tokens` (Gemini Pro and Claude over 200k tokens, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTier {
    /// The tier applies to prompts of more than this many tokens.
    pub above_input_tokens: u64,
    /// Its rates.
    pub rates: Rates,
}

/// What a model costs per token: base rates and, where the vendor charges
/// more for long prompts, tiers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Prompt tokens.
    pub input: Price,
    /// Generated tokens.
    pub output: Price,
    /// Prompt tokens served from cache; the input price applies when absent.
    pub cached_input: Option<Price>,
    /// Five-minute cache writes; 1.25× input when absent.
    #[serde(default)]
    pub cache_write: Option<Price>,
    /// One-hour cache writes; 2× input when absent.
    #[serde(default)]
    pub cache_write_1h: Option<Price>,
    /// Long-context tiers, lowest threshold first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<PriceTier>,
}

impl ModelPrice {
    /// Input, output and cached-input rates, no tiers.
    pub fn new(input: Price, output: Price, cached_input: Option<Price>) -> Self {
        Self {
            input,
            output,
            cached_input,
            ..Self::default()
        }
    }

    /// The base (short-prompt) rates.
    pub fn base(&self) -> Rates {
        Rates {
            input: self.input,
            output: self.output,
            cached_input: self.cached_input,
            cache_write: self.cache_write,
            cache_write_1h: self.cache_write_1h,
        }
    }

    /// The rates a request with `prompt_tokens` prompt tokens pays: those
    /// of the highest tier it exceeds, else the base rates. A tier that
    /// lists no cached rate keeps the base one.
    pub fn rates_for(&self, prompt_tokens: u64) -> Rates {
        self.tiers
            .iter()
            .filter(|t| prompt_tokens > t.above_input_tokens)
            .max_by_key(|t| t.above_input_tokens)
            .map_or_else(
                || self.base(),
                |t| Rates {
                    cached_input: t.rates.cached_input.or(self.cached_input),
                    ..t.rates
                },
            )
    }

    /// Fill what the protocol's vendor documents for rates the table leaves
    /// out: Anthropic reads cost 0.1× input. Listed rates always win.
    pub fn with_protocol_defaults(mut self, kind: ProviderKind) -> Self {
        if kind == ProviderKind::Anthropic {
            let read = |r: &mut Rates| {
                if r.cached_input.is_none() {
                    r.cached_input = Some(r.input.times(ANTHROPIC_CACHE_READ));
                }
            };
            let mut base = self.base();
            read(&mut base);
            self.cached_input = base.cached_input;
            for t in &mut self.tiers {
                read(&mut t.rates);
            }
        }
        self
    }
}

/// Where a catalog entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// The table shipped with Switchboard.
    Bundled,
    /// The user's config.toml.
    Config,
    /// Fetched from the provider.
    Live,
}

/// One model of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Model id as sent on the wire.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Context window in tokens.
    pub context_window: Option<u64>,
    /// Most output tokens.
    pub max_output_tokens: Option<u64>,
    /// Prices, when known.
    pub price: Option<ModelPrice>,
    /// What it takes besides text (images, PDFs), when known; `None`: the
    /// catalog does not say (see [`Catalog::accepts`]).
    pub accepts: Option<Accepts>,
    /// Where this entry came from.
    pub source: PriceSource,
}

/// A model entry as written in `data/models.toml` and in config.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Provider (preset) id; only in the bundled table.
    #[serde(default)]
    pub provider: Option<String>,
    /// Model id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Context window.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Output limit.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// What it takes besides text: `["image"]`, `["image", "pdf"]`, `[]`.
    #[serde(default)]
    pub accepts: Option<Accepts>,
    /// USD per million prompt tokens (with `output_usd_per_mtok`; an entry
    /// may leave both out to describe a model without pricing it, e.g. a
    /// local server's model that takes images).
    #[serde(default)]
    pub input_usd_per_mtok: Option<Price>,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_usd_per_mtok: Option<Price>,
    /// USD per million cached prompt tokens (cache reads).
    #[serde(default)]
    pub cached_input_usd_per_mtok: Option<Price>,
    /// USD per million tokens written to a five-minute prompt cache.
    #[serde(default)]
    pub cache_write_usd_per_mtok: Option<Price>,
    /// USD per million tokens written to a one-hour prompt cache.
    #[serde(default)]
    pub cache_write_1h_usd_per_mtok: Option<Price>,
    /// Long-context tiers (`[[...models.tiers]]`).
    #[serde(default)]
    pub tiers: Vec<TierEntry>,
}

/// A long-context tier as written in a price table: every rate of the
/// request changes once the prompt is longer than `above_input_tokens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierEntry {
    /// Prompts of more than this many tokens (input, cache reads and
    /// writes together) pay this tier's rates.
    pub above_input_tokens: u64,
    /// USD per million prompt tokens.
    pub input_usd_per_mtok: Price,
    /// USD per million output tokens.
    pub output_usd_per_mtok: Price,
    /// USD per million cached prompt tokens.
    #[serde(default)]
    pub cached_input_usd_per_mtok: Option<Price>,
    /// USD per million five-minute cache writes.
    #[serde(default)]
    pub cache_write_usd_per_mtok: Option<Price>,
    /// USD per million one-hour cache writes.
    #[serde(default)]
    pub cache_write_1h_usd_per_mtok: Option<Price>,
}

impl ModelEntry {
    /// As a catalog entry.
    pub fn info(&self, source: PriceSource) -> ModelInfo {
        let mut tiers: Vec<PriceTier> = self
            .tiers
            .iter()
            .map(|t| PriceTier {
                above_input_tokens: t.above_input_tokens,
                rates: Rates {
                    input: t.input_usd_per_mtok,
                    output: t.output_usd_per_mtok,
                    cached_input: t.cached_input_usd_per_mtok,
                    cache_write: t.cache_write_usd_per_mtok,
                    cache_write_1h: t.cache_write_1h_usd_per_mtok,
                },
            })
            .collect();
        tiers.sort_by_key(|t| t.above_input_tokens);
        let price = match (self.input_usd_per_mtok, self.output_usd_per_mtok) {
            (Some(input), Some(output)) => Some(ModelPrice {
                input,
                output,
                cached_input: self.cached_input_usd_per_mtok,
                cache_write: self.cache_write_usd_per_mtok,
                cache_write_1h: self.cache_write_1h_usd_per_mtok,
                tiers,
            }),
            _ => None,
        };
        ModelInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            context_window: self.context_window,
            max_output_tokens: self.max_output_tokens,
            price,
            accepts: self.accepts.clone(),
            source,
        }
    }

    /// What is wrong with the entry as a whole (serde checks each field):
    /// one of the two base prices without the other.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match (self.input_usd_per_mtok, self.output_usd_per_mtok) {
            (Some(_), None) => Some((
                "output_usd_per_mtok",
                format!(
                    "model {:?} has input_usd_per_mtok but no output_usd_per_mtok: give both, or neither",
                    self.id
                ),
            )),
            (None, Some(_)) => Some((
                "input_usd_per_mtok",
                format!(
                    "model {:?} has output_usd_per_mtok but no input_usd_per_mtok: give both, or neither",
                    self.id
                ),
            )),
            (None, None) if !self.tiers.is_empty() || self.cached_input_usd_per_mtok.is_some() => {
                Some((
                    "input_usd_per_mtok",
                    format!(
                        "model {:?} has other prices but no input_usd_per_mtok and output_usd_per_mtok",
                        self.id
                    ),
                ))
            }
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct BundledFile {
    models: Vec<ModelEntry>,
}

type Table = BTreeMap<String, BTreeMap<String, ModelInfo>>;

fn bundled() -> &'static Table {
    static BUNDLED: OnceLock<Table> = OnceLock::new();
    BUNDLED.get_or_init(|| {
        // Shipped in the binary and parsed by a unit test: cannot fail for users.
        let file: BundledFile = toml::from_str(include_str!("../data/models.toml"))
            .unwrap_or(BundledFile { models: Vec::new() });
        let mut table = Table::new();
        for m in file.models {
            let provider = m.provider.clone().unwrap_or_default();
            table
                .entry(provider)
                .or_default()
                .insert(m.id.clone(), m.info(PriceSource::Bundled));
        }
        table
    })
}

/// Every known model, by provider id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    config: Table,
    live: Table,
}

impl Catalog {
    /// The bundled table only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the user's entries for `provider_id` (they win over everything).
    pub fn add_config(&mut self, provider_id: &str, entries: &[ModelEntry]) {
        let t = self.config.entry(provider_id.to_owned()).or_default();
        for e in entries {
            t.insert(e.id.clone(), e.info(PriceSource::Config));
        }
    }

    /// Add models fetched from `provider_id`.
    pub fn add_live(&mut self, provider_id: &str, models: Vec<ModelInfo>) {
        let t = self.live.entry(provider_id.to_owned()).or_default();
        for m in models {
            t.insert(m.id.clone(), m);
        }
    }

    /// What is known about `model` at `provider`. Prices missing from a
    /// live entry are taken from the bundled table.
    pub fn lookup(&self, provider: &ProviderConfig, model: &str) -> Option<ModelInfo> {
        self.lookup_as_listed(provider, model).map(|mut m| {
            m.price = m.price.map(|p| p.with_protocol_defaults(provider.kind));
            m
        })
    }

    fn lookup_as_listed(&self, provider: &ProviderConfig, model: &str) -> Option<ModelInfo> {
        let below = self.lookup_below_config(provider, model);
        match self.config.get(&provider.id).and_then(|t| t.get(model)) {
            // What the user's entry leaves out (a model described only by
            // what it accepts, say) comes from the other sources.
            Some(m) => {
                let mut m = m.clone();
                if let Some(b) = below {
                    if m.price.is_none() && b.price.is_some() {
                        m.price = b.price;
                        m.source = b.source;
                    }
                    m.name = m.name.or(b.name);
                    m.context_window = m.context_window.or(b.context_window);
                    m.max_output_tokens = m.max_output_tokens.or(b.max_output_tokens);
                    m.accepts = m.accepts.or(b.accepts);
                }
                Some(m)
            }
            None => below,
        }
    }

    fn lookup_below_config(&self, provider: &ProviderConfig, model: &str) -> Option<ModelInfo> {
        let bundled_entry = bundled()
            .get(provider.price_key())
            .and_then(|t| t.get(model));
        match self.live.get(&provider.id).and_then(|t| t.get(model)) {
            Some(live) => {
                let mut m = live.clone();
                if m.price.is_none() {
                    m.price = bundled_entry.and_then(|b| b.price.clone());
                    m.source = if m.price.is_some() {
                        PriceSource::Bundled
                    } else {
                        PriceSource::Live
                    };
                }
                m.context_window = m
                    .context_window
                    .or(bundled_entry.and_then(|b| b.context_window));
                m.max_output_tokens = m
                    .max_output_tokens
                    .or(bundled_entry.and_then(|b| b.max_output_tokens));
                m.accepts = m
                    .accepts
                    .or_else(|| bundled_entry.and_then(|b| b.accepts.clone()));
                Some(m)
            }
            None => bundled_entry.cloned(),
        }
    }

    /// What `model` at `provider` takes besides text: its catalog entry's
    /// `accepts`, else its preset's default for models it does not list.
    /// `None`: nothing says, so no attachment is sent to it.
    pub fn accepts(&self, provider: &ProviderConfig, model: &str) -> Option<Accepts> {
        self.lookup_as_listed(provider, model)
            .and_then(|m| m.accepts)
            .or_else(|| provider.default_accepts())
    }

    /// The price of `model` at `provider`, when known.
    pub fn price(&self, provider: &ProviderConfig, model: &str) -> Option<ModelPrice> {
        self.lookup(provider, model).and_then(|m| m.price)
    }

    /// Every model known for `provider`, sorted by id.
    pub fn models(&self, provider: &ProviderConfig) -> Vec<ModelInfo> {
        let mut ids: Vec<String> = Vec::new();
        for t in [
            bundled().get(provider.price_key()),
            self.live.get(&provider.id),
            self.config.get(&provider.id),
        ]
        .into_iter()
        .flatten()
        {
            ids.extend(t.keys().cloned());
        }
        ids.sort();
        ids.dedup();
        ids.iter()
            .filter_map(|id| self.lookup(provider, id))
            .collect()
    }

    /// Load cached live lists (`<dir>/<provider>.json`) written by [`save_live`].
    pub fn load_live_cache(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(models) = serde_json::from_str::<Vec<CachedModel>>(&text)
            {
                self.add_live(
                    &id,
                    models.into_iter().map(CachedModel::into_info).collect(),
                );
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CachedModel {
    id: String,
    name: Option<String>,
    context_window: Option<u64>,
    max_output_tokens: Option<u64>,
    input: Option<String>,
    output: Option<String>,
    cached_input: Option<String>,
    #[serde(default)]
    cache_write: Option<String>,
    #[serde(default)]
    accepts: Option<Accepts>,
}

impl CachedModel {
    fn from_info(m: &ModelInfo) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            context_window: m.context_window,
            max_output_tokens: m.max_output_tokens,
            input: m.price.as_ref().map(|p| p.input.usd_per_mtok()),
            output: m.price.as_ref().map(|p| p.output.usd_per_mtok()),
            cached_input: m
                .price
                .as_ref()
                .and_then(|p| p.cached_input)
                .map(Price::usd_per_mtok),
            cache_write: m
                .price
                .as_ref()
                .and_then(|p| p.cache_write)
                .map(Price::usd_per_mtok),
            accepts: m.accepts.clone(),
        }
    }

    fn into_info(self) -> ModelInfo {
        let parse =
            |s: &Option<String>| s.as_deref().and_then(|s| Price::from_usd_per_mtok(s).ok());
        let price = match (parse(&self.input), parse(&self.output)) {
            (Some(input), Some(output)) => Some(ModelPrice {
                cache_write: parse(&self.cache_write),
                ..ModelPrice::new(input, output, parse(&self.cached_input))
            }),
            _ => None,
        };
        ModelInfo {
            id: self.id,
            name: self.name,
            context_window: self.context_window,
            max_output_tokens: self.max_output_tokens,
            price,
            accepts: self.accepts,
            source: PriceSource::Live,
        }
    }
}

/// Write a fetched list to `<dir>/<provider>.json` (atomically).
pub fn save_live(dir: &Path, provider_id: &str, models: &[ModelInfo]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cached: Vec<CachedModel> = models.iter().map(CachedModel::from_info).collect();
    let json = serde_json::to_vec_pretty(&cached).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{provider_id}.json.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join(format!("{provider_id}.json")))
}

/// Fetch the provider's model list: the cheapest authenticated call, so it
/// also tells whether a key works.
pub async fn list_models(
    client: &Client,
    provider: &ProviderConfig,
    key: Option<&Secret>,
) -> Result<Vec<ModelInfo>, ProviderError> {
    let wire = provider::models_request(provider, key.map(Secret::expose));
    let doc = client.get_json(provider, &wire.url, &wire.headers).await?;
    Ok(parse_model_list(provider.kind, &doc))
}

/// Read a model list document of any of the three protocols (OpenRouter's
/// entries carry `pricing` per token, `context_length` and their input
/// modalities).
pub fn parse_model_list(kind: ProviderKind, doc: &Value) -> Vec<ModelInfo> {
    provider::parse_model_list(kind, doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::presets;

    #[test]
    fn the_bundled_table_parses_and_covers_every_hosted_preset() {
        let file: BundledFile = toml::from_str(include_str!("../data/models.toml")).unwrap();
        assert!(file.models.len() >= 30);
        for id in [
            "openai",
            "anthropic",
            "gemini",
            "openrouter",
            "groq",
            "mistral",
            "deepseek",
            "xai",
            "together",
            "fireworks",
        ] {
            let p = ProviderConfig::from_preset(id).unwrap();
            let models = Catalog::new().models(&p);
            assert!(!models.is_empty(), "no bundled models for {id}");
            for m in models {
                let price = m.price.clone().unwrap();
                assert!(
                    m.context_window.unwrap_or(0) > 0,
                    "{id}/{}: no context window",
                    m.id
                );
                if let Some(c) = price.cached_input {
                    assert!(c <= price.input, "{id}/{}: cached dearer than input", m.id);
                }
            }
        }
        for m in file.models {
            let p = m.provider.unwrap();
            assert!(presets().contains_key(&p), "unknown provider {p}");
        }
    }

    #[test]
    fn config_entries_win_and_live_entries_borrow_bundled_prices() {
        let p = ProviderConfig::from_preset("openai").unwrap();
        let bundled_id = Catalog::new().models(&p)[0].id.clone();
        let mut cat = Catalog::new();
        cat.add_live(
            "openai",
            vec![ModelInfo {
                id: bundled_id.clone(),
                name: None,
                context_window: None,
                max_output_tokens: None,
                price: None,
                accepts: None,
                source: PriceSource::Live,
            }],
        );
        let m = cat.lookup(&p, &bundled_id).unwrap();
        assert!(m.price.is_some(), "bundled price used for a live entry");
        let entry: ModelEntry = toml::from_str(&format!(
            "id = \"{bundled_id}\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = \"2\""
        ))
        .unwrap();
        cat.add_config("openai", &[entry]);
        let m = cat.lookup(&p, &bundled_id).unwrap();
        assert_eq!(m.source, PriceSource::Config);
        assert_eq!(
            m.price.unwrap().output,
            Price::from_usd_per_mtok("2").unwrap()
        );
        assert!(cat.lookup(&p, "no-such-model").is_none());
    }

    #[test]
    fn cache_write_rates_and_tiers_are_read_and_the_table_wins() {
        let p = |s: &str| Price::from_usd_per_mtok(s).unwrap();
        let entry: ModelEntry = toml::from_str(
            "id = \"m\"\ninput_usd_per_mtok = 3\noutput_usd_per_mtok = 15\ncache_write_usd_per_mtok = \"3.50\"\n[[tiers]]\nabove_input_tokens = 200000\ninput_usd_per_mtok = 6\noutput_usd_per_mtok = \"22.50\"\n",
        )
        .unwrap();
        let mut cat = Catalog::new();
        cat.add_config("claude-proxy", std::slice::from_ref(&entry));
        cat.add_config("oa-proxy", &[entry]);
        let anthropic = ProviderConfig::custom(
            "claude-proxy",
            ProviderKind::Anthropic,
            "http://127.0.0.1:9",
        );
        let openai = ProviderConfig::custom("oa-proxy", ProviderKind::OpenAi, "http://127.0.0.1:9");
        let a = cat.price(&anthropic, "m").unwrap();
        assert_eq!(a.cache_write, Some(p("3.50")), "listed: wins over 1.25x");
        assert_eq!(a.cache_write_1h, None, "not listed: 2x input at cost time");
        // Anthropic reads default to 0.1x input, in the tier too.
        assert_eq!(a.cached_input, Some(p("0.30")));
        assert_eq!(a.rates_for(200_001).cached_input, Some(p("0.60")));
        assert_eq!(a.rates_for(200_001).output, p("22.50"));
        assert_eq!(a.rates_for(200_000).output, p("15"));
        // Other protocols: no read rate invented (the input rate applies).
        let o = cat.price(&openai, "m").unwrap();
        assert_eq!(o.cached_input, None);
        // A tier field the schema does not know is an error, not ignored.
        assert!(
            toml::from_str::<ModelEntry>(
                "id = \"m\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n[[tiers]]\nabove = 5\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n"
            )
            .is_err()
        );
    }

    #[test]
    fn bundled_long_context_tiers_match_the_vendors_published_rates() {
        let p = |s: &str| Price::from_usd_per_mtok(s).unwrap();
        let cat = Catalog::new();
        let tier = |preset: &str, model: &str, prompt: u64| {
            cat.price(&ProviderConfig::from_preset(preset).unwrap(), model)
                .unwrap()
                .rates_for(prompt)
        };
        let pro = tier("gemini", "gemini-2.5-pro", 200_001);
        assert_eq!(
            (pro.input, pro.output, pro.cached_input),
            (p("2.50"), p("15.00"), Some(p("0.25")))
        );
        assert_eq!(tier("gemini", "gemini-2.5-pro", 200_000).input, p("1.25"));
        assert_eq!(
            tier("gemini", "gemini-3.1-pro-preview", 250_000).output,
            p("18.00")
        );
        // xAI's ">= 200K": exactly 200,000 already pays the tier.
        assert_eq!(tier("xai", "grok-4.7", 200_000).input, p("4.00"));
        assert_eq!(tier("xai", "grok-4.7", 199_999).input, p("2.00"));
        // A tier without a cached rate keeps the base one.
        assert_eq!(
            tier("xai", "grok-build-0.1", 200_000).cached_input,
            Some(p("0.20"))
        );
        assert_eq!(tier("openai", "gpt-6-luna", 272_001).output, p("0.75"));
        assert_eq!(
            tier("anthropic", "claude-haiku-5-5", 100_001).cached_input,
            Some(p("0.05"))
        );
    }

    #[test]
    fn openrouter_list_prices_per_token() {
        let doc: Value = serde_json::from_str(r#"{"data":[{"id":"openai/gpt-x","name":"GPT X","context_length":128000,"pricing":{"prompt":"0.0000025","completion":"0.00001","input_cache_read":"0.00000125"},"top_provider":{"max_completion_tokens":16384}},{"id":"openrouter/auto","pricing":{"prompt":"-1","completion":"-1"}}]}"#).unwrap();
        let list = parse_model_list(ProviderKind::OpenAi, &doc);
        assert_eq!(list.len(), 2);
        let p = list[0].price.clone().unwrap();
        assert_eq!(p.input, Price::from_usd_per_mtok("2.5").unwrap());
        assert_eq!(p.output, Price::from_usd_per_mtok("10").unwrap());
        assert_eq!(
            p.cached_input,
            Some(Price::from_usd_per_mtok("1.25").unwrap())
        );
        assert_eq!(list[0].context_window, Some(128000));
        assert!(list[1].price.is_none(), "variable prices are not prices");
    }

    #[test]
    fn live_cache_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = ProviderConfig::from_preset("openrouter").unwrap();
        let price = ModelPrice::new(
            Price::from_usd_per_mtok("0.3").unwrap(),
            Price::from_usd_per_mtok("1.2").unwrap(),
            None,
        );
        let m = ModelInfo {
            id: "x/y".into(),
            name: Some("Y".into()),
            context_window: Some(8),
            max_output_tokens: None,
            price: Some(price),
            accepts: Some(Accepts(vec![crate::attach::MediaKind::Image])),
            source: PriceSource::Live,
        };
        save_live(dir.path(), "openrouter", std::slice::from_ref(&m)).unwrap();
        let mut cat = Catalog::new();
        cat.load_live_cache(dir.path());
        assert_eq!(cat.lookup(&p, "x/y").unwrap(), m);
    }
}
