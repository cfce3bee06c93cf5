//! The readouts under an answer: who served it (and the trail of targets
//! a route tried), time to first token, tokens/s, total time, input and
//! output tokens, and cost ("est." when the token counts were estimated).

use leptos::prelude::*;
use switchboard_protocol::{format_usd, usd_to_nanos};

use super::state::Answer;

/// Readout numbers.
fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

fn tokens(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// The readouts as text.
#[derive(Debug, Clone, PartialEq)]
struct Texts {
    served: String,
    trail: Option<String>,
    thinking: Option<String>,
    ttft: String,
    tps: String,
    total: String,
    tokens: String,
    cost: String,
}

fn texts(answer: &Answer) -> Texts {
    let live = answer.live.get();
    let summary = answer.summary.get();
    let (provider, model, trail) = match &summary {
        Some(s) => (
            s.provider.clone(),
            s.model.clone(),
            s.trail
                .iter()
                .map(|t| format!("{}/{}", t.provider, t.model))
                .collect::<Vec<_>>(),
        ),
        None => {
            let (p, m) = live.trail.last().cloned().unwrap_or_else(|| {
                let t = answer.target.get();
                let (p, m) = t.split_once(':').unwrap_or((&t, ""));
                (p.to_owned(), m.to_owned())
            });
            (
                p,
                m,
                live.trail.iter().map(|(p, m)| format!("{p}/{m}")).collect(),
            )
        }
    };
    let ttft = summary.as_ref().and_then(|s| s.ttft_ms).or(live.ttft_ms);
    let total = summary.as_ref().map_or(live.elapsed_ms, |s| s.total_ms);
    let tps = match &summary {
        Some(s) => s.tokens_per_s.map(|t| format!("{t:.1} tok/s")),
        None => match (live.ttft_ms, live.tokens.output) {
            (Some(first), Some(out)) if live.elapsed_ms > first => Some(format!(
                "{:.1} tok/s",
                out.saturating_sub(live.tokens.reasoning.unwrap_or(0)) as f64
                    / ((live.elapsed_ms - first) / 1000.0)
            )),
            (Some(first), None) if live.elapsed_ms > first && live.chars > 0 => Some(format!(
                "≈{:.0} tok/s",
                (live.chars as f64 / 4.0) / ((live.elapsed_ms - first) / 1000.0)
            )),
            _ => None,
        },
    };
    let counts = summary.as_ref().map_or(live.tokens, |s| s.tokens);
    let cost = summary.as_ref().and_then(|s| {
        s.cost_usd.as_deref().and_then(usd_to_nanos).map(|n| {
            if s.cost_estimated {
                format!("est. {}", format_usd(n))
            } else {
                format_usd(n)
            }
        })
    });
    Texts {
        served: format!("{provider}/{model}"),
        trail: (trail.len() > 1).then(|| trail.join(" → ")),
        thinking: summary
            .as_ref()
            .and_then(|s| s.thinking_ms)
            .map(|t| format!("thought {}", ms(t))),
        ttft: ttft.map_or_else(|| "TTFT …".to_owned(), |t| format!("TTFT {}", ms(t))),
        tps: tps.unwrap_or_else(|| "– tok/s".to_owned()),
        total: ms(total),
        tokens: format!(
            "{} in / {} out",
            tokens(counts.input),
            tokens(counts.output)
        ),
        cost: cost.unwrap_or_else(|| "cost –".to_owned()),
    }
}

/// Who served an answer, its speed, tokens and cost: live while it
/// streams, then the engine's final figures. The markup is made once; a
/// change of figures only changes the text that changed.
#[component]
pub fn Readouts(answer: Answer) -> impl IntoView {
    let t = Memo::new(move |_| texts(&answer));
    view! {
        <div class="readouts">
            <span class="ro-served" title="Who served this answer">{move || t.with(|t| t.served.clone())}</span>
            {move || t.with(|t| t.trail.clone()).map(|trail| view! { <span class="ro-trail" title="Targets tried, in order">{trail}</span> })}
            {move || t.with(|t| t.thinking.clone()).map(|th| view! { <span class="ro" data-ro="thinking" title="Streamed thinking before the answer (first reasoning token to first answer token)">{th}</span> })}
            <span class="ro" data-ro="ttft" title="Time to the first answer token (thinking included, reasoning text not counted)">{move || t.with(|t| t.ttft.clone())}</span>
            <span class="ro" data-ro="tps" title="Answer tokens per second (reasoning excluded)">{move || t.with(|t| t.tps.clone())}</span>
            <span class="ro" data-ro="total" title="Total time">{move || t.with(|t| t.total.clone())}</span>
            <span class="ro" data-ro="tokens" title="Input / output tokens">{move || t.with(|t| t.tokens.clone())}</span>
            <span class="ro ro-cost" data-ro="cost" title="Cost of this answer">{move || t.with(|t| t.cost.clone())}</span>
        </div>
    }
}
