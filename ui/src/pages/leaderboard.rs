//! Leaderboard: which model wins the user's own blind votes. Ratings are a
//! Bradley–Terry fit on the Elo scale with a 95% interval; beside them the
//! votes, wins and win rate, and from the ledger the median cost of an
//! answer, the median time to first token and tokens/s. Filters: a tag and
//! the last 7, 30 or 90 days; "Best value" orders by expected score per
//! dollar. A model with too few votes is shown, marked, and never ranked.
//! The numbers are the engine's (`Store::leaderboard`), the same as
//! `switchboard-cli leaderboard`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{Leaderboard, LeaderboardQuery, LeaderboardRow, format_usd};

use crate::ipc;

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.digits$}{unit}"))
}

fn row_view(r: &LeaderboardRow) -> impl IntoView + use<> {
    let rank = r.rank.map_or_else(|| "–".to_owned(), |n| n.to_string());
    let rating = format!("{:.0}", r.rating);
    let interval = format!("{:.0}–{:.0}", r.rating_low, r.rating_high);
    let cost = r
        .median_cost_nanos
        .map_or_else(|| "—".to_owned(), format_usd);
    let value = opt(r.value_per_usd, 1, "/$");
    let provisional = r.too_few_votes;
    view! {
        <tr class="lb-row" class:provisional=provisional data-model=r.model.clone()>
            <td class="lb-rank">{rank}</td>
            <td class="lb-model">{r.model.clone()}
                {provisional.then(|| view! { <span class="badge lb-few" title="Fewer than 5 blind votes: not ranked yet">"too few votes"</span> })}
            </td>
            <td class="lb-rating" title="95% interval">{rating}" "<span class="dim">{interval}</span></td>
            <td class="lb-votes">{r.votes}</td>
            <td class="lb-wins">{r.wins}</td>
            <td class="lb-winrate">{format!("{:.0}%", r.win_rate * 100.0)}</td>
            <td class="lb-cost">{cost}</td>
            <td class="lb-ttft">{opt(r.median_ttft_ms, 0, " ms")}</td>
            <td class="lb-tps">{opt(r.median_tokens_per_s, 1, " tok/s")}</td>
            <td class="lb-value">{value}</td>
        </tr>
    }
}

#[component]
pub fn LeaderboardPage() -> impl IntoView {
    let tag = RwSignal::new(String::new());
    let days = RwSignal::new(0u32);
    let by_value = RwSignal::new(false);
    let data = RwSignal::new(None::<Result<Leaderboard, String>>);
    let latest = StoredValue::new(0u64);
    Effect::new(move |_| {
        let (t, d) = (tag.get(), days.get());
        let ticket = latest.get_value() + 1;
        latest.set_value(ticket);
        let from_ms = (d > 0).then(|| js_sys::Date::now() as i64 - i64::from(d) * 86_400_000);
        let query = LeaderboardQuery {
            tag: Some(t.trim().to_owned()).filter(|t| !t.is_empty()),
            from_ms,
            to_ms: None,
        };
        spawn_local(async move {
            let result = ipc::leaderboard(&query).await.map_err(|e| e.message);
            if latest.try_get_value() == Some(ticket) {
                data.set(Some(result));
            }
        });
    });
    let table = move || {
        let value = by_value.get();
        data.get().map(|result| match result {
            Err(e) => view! { <p class="pane-error" role="alert">{e}</p> }.into_any(),
            Ok(board) if board.rows.is_empty() => view! {
                <p class="dim" id="leaderboard-empty">"No blind votes yet. In the compare view, turn on Blind, send a prompt to two or more panes, and vote on the answers."</p>
            }
            .into_any(),
            Ok(board) => {
                let rows: Vec<LeaderboardRow> = if value {
                    board.by_value().into_iter().cloned().collect()
                } else {
                    board.rows.clone()
                };
                view! {
                    <p class="dim" id="leaderboard-votes">{format!("{} blind vote{} counted", board.votes, if board.votes == 1 { "" } else { "s" })}</p>
                    <table class="spend-table" id="leaderboard">
                        <thead><tr>
                            <th>"#"</th><th>"Model"</th><th>"Rating (95%)"</th><th>"Votes"</th><th>"Wins"</th>
                            <th>"Win rate"</th><th>"Median cost/answer"</th><th>"Median TTFT"</th><th>"Tokens/s"</th><th>"Value"</th>
                        </tr></thead>
                        <tbody>{rows.iter().map(row_view).collect_view()}</tbody>
                    </table>
                }
                .into_any()
            }
        })
    };
    view! {
        <section class="page leaderboard-page" id="leaderboard-page">
            <h1>"Leaderboard"</h1>
            <p class="dim">"Ratings from your blind votes (Bradley–Terry, 1000 = average), with the ledger's cost and speed."</p>
            <div class="lb-filters">
                <input type="text" id="lb-tag" placeholder="tag" aria-label="Only conversations with this tag"
                    prop:value=move || tag.get() on:change=move |ev| tag.set(event_target_value(&ev)) />
                <select id="lb-days" aria-label="Time range"
                    on:change=move |ev| days.set(event_target_value(&ev).parse().unwrap_or(0))>
                    <option value="0">"All time"</option>
                    <option value="7">"Last 7 days"</option>
                    <option value="30">"Last 30 days"</option>
                    <option value="90">"Last 90 days"</option>
                </select>
                <label class="toggle"><input type="checkbox" id="lb-value" prop:checked=move || by_value.get()
                    on:change=move |ev| by_value.set(event_target_checked(&ev)) />"Best value first"</label>
            </div>
            {table}
        </section>
    }
}
