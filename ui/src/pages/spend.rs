//! Spend: what today, this week and this month cost; a stacked chart of
//! cost per day (by provider, model, route or tag) over the last 7, 30 or
//! 90 days; a table of the same groups with requests, tokens, cost, average
//! cost per answer, TTFT, tokens/s and error rate (a click filters the
//! chart); the budgets with their progress and pace, and an editor for
//! them; and a CSV export of the ledger for a period.
//!
//! Money arrives as exact decimal strings and is only ever shown, never
//! summed in floats: chart heights are the one place a float is used.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    BudgetInput, BudgetView, SpendOverview, SpendRow, SpendTotalView, format_usd, usd_to_nanos,
};

use crate::components::ConfirmButton;
use crate::ipc;

/// The groupings of the chart and table: (value, label).
const GROUPINGS: [(&str, &str); 4] = [
    ("provider", "Provider"),
    ("model", "Model"),
    ("route", "Route"),
    ("tag", "Tag"),
];

/// Series colours (CSS variables of both themes).
const SERIES: usize = 8;

fn nanos(usd: &str) -> i64 {
    usd_to_nanos(usd).unwrap_or(0)
}

fn money(usd: &str) -> String {
    usd_to_nanos(usd).map_or_else(|| usd.to_owned(), format_usd)
}

/// The label of a group key (`None`: no route / no tag).
fn key_label(by: &str, key: Option<&str>) -> String {
    match (key, by) {
        (Some(k), _) => k.to_owned(),
        (None, "route") => "(no route)".to_owned(),
        (None, "tag") => "(no tag)".to_owned(),
        (None, _) => "(none)".to_owned(),
    }
}

/// Escape text for SVG markup.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A short axis label: `$0`, `$0.0025`, `$1.50`.
fn axis_usd(n: f64) -> String {
    if n <= 0.0 {
        return "$0".to_owned();
    }
    let usd = n / 1e9;
    if usd >= 1.0 {
        return format!("${usd:.2}");
    }
    let decimals = (-usd.log10().floor()) as usize + 1;
    let text = format!("{usd:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("${text}")
}

/// A round step for about four grid lines up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 4.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// The stacked bar chart as SVG markup: one bar per day, one segment per
/// group, each with a `<title>` tooltip; axes, grid and labels.
fn chart_svg(o: &SpendOverview, filter: &Option<Option<String>>) -> String {
    const W: f64 = 800.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 30.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    // Series in the table's order (most expensive first).
    let keys: Vec<Option<String>> = o.rows.iter().map(|r| r.key.clone()).collect();
    let colour = |k: &Option<String>| keys.iter().position(|x| x == k).unwrap_or(0) % SERIES;
    let shown = |k: &Option<String>| filter.as_ref().is_none_or(|f| f == k);
    let day_total = |day: &str| -> i64 {
        o.cells
            .iter()
            .filter(|c| c.day == day && shown(&c.key))
            .map(|c| nanos(&c.cost_usd))
            .sum()
    };
    let max = o.days.iter().map(|d| day_total(d)).max().unwrap_or(0) as f64;
    let step = nice_step(max);
    let top = if max > 0.0 {
        (max / step).ceil() * step
    } else {
        step * 4.0
    };
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let n = o.days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.72).max(1.0);
    let mut svg = format!(
        "<svg class=\"spend-svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" \
         aria-label=\"Cost per day\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    // Grid and y axis labels.
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let yy = y(v);
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            axis_usd(v)
        ));
        v += step;
    }
    // Bars: segments stacked from the bottom, most expensive group first.
    let label_every = (o.days.len() / 8).max(1);
    for (i, day) in o.days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0.0;
        let mut cells: Vec<_> = o
            .cells
            .iter()
            .filter(|c| &c.day == day && shown(&c.key))
            .collect();
        cells.sort_by_key(|c| colour(&c.key));
        for c in cells {
            let value = nanos(&c.cost_usd) as f64;
            if value <= 0.0 {
                continue;
            }
            let (y0, y1) = (y(base), y(base + value));
            svg.push_str(&format!(
                "<rect class=\"seg s{}\" x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bar:.1}\" \
                 height=\"{:.1}\"><title>{} · {}: {}</title></rect>",
                colour(&c.key),
                (y0 - y1).max(0.5),
                day,
                xml(&key_label(&o.by, c.key.as_deref())),
                format_usd(nanos(&c.cost_usd)),
            ));
            base += value;
        }
        // The whole day, for hovering anywhere in its column.
        let total = day_total(day);
        svg.push_str(&format!(
            "<rect class=\"day-hit\" x=\"{:.1}\" y=\"{TOP}\" width=\"{slot:.1}\" \
             height=\"{:.1}\" data-day=\"{day}\" data-total=\"{}\"><title>{day}: {}</title></rect>",
            LEFT + slot * i as f64,
            (y(base) - TOP).max(0.0),
            total,
            format_usd(total),
        ));
        if i % label_every == 0 || i + 1 == o.days.len() {
            svg.push_str(&format!(
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                H - 10.0,
                day.get(5..).unwrap_or(day)
            ));
        }
    }
    svg.push_str(&format!(
        "<line class=\"axis-line\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"axis-line\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\"/></svg>",
        W - RIGHT,
        TOP + plot_h,
        TOP + plot_h,
        TOP + plot_h
    ));
    svg
}

#[component]
fn TotalCard(id: &'static str, label: &'static str, total: SpendTotalView) -> impl IntoView {
    let est = if total.estimated_requests > 0 {
        format!(" ({} est.)", total.estimated_requests)
    } else {
        String::new()
    };
    let unknown = total.unknown_price_requests;
    view! {
        <div class="spend-card" id=id>
            <div class="spend-card-label">{label}</div>
            <div class="spend-amount">{money(&total.cost_usd)}</div>
            <div class="dim spend-card-meta">
                {format!("{} requests{est} · {} in / {} out tokens", total.requests, total.input_tokens, total.output_tokens)}
            </div>
            {(unknown > 0).then(|| view! {
                <div class="dim spend-card-unknown" title="Not in the amount: add input_usd_per_mtok and output_usd_per_mtok for the model in config.toml">
                    {format!("{unknown} request{} with unknown price", if unknown == 1 { "" } else { "s" })}
                </div>
            })}
        </div>
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

#[component]
fn SpendTable(
    by: String,
    rows: Vec<SpendRow>,
    filter: RwSignal<Option<Option<String>>>,
) -> impl IntoView {
    let lines = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r.key.clone();
            let key2 = r.key.clone();
            let selected = move || filter.get().as_ref() == Some(&key2);
            let toggle = move |_| {
                let k = key.clone();
                filter.update(|f| *f = if f.as_ref() == Some(&k) { None } else { Some(k) });
            };
            let label = key_label(&by, r.key.as_deref());
            let swatch = format!("swatch s{}", i % SERIES);
            view! {
                <tr class="spend-row" class:selected=selected data-key=label.clone() on:click=toggle title="Show only this group in the chart">
                    <td class="group"><span class=swatch></span>{label.clone()}</td>
                    <td class="num" data-col="requests">{r.total.requests}</td>
                    <td class="num" data-col="input">{r.total.input_tokens}</td>
                    <td class="num" data-col="output">{r.total.output_tokens}</td>
                    <td class="num" data-col="cost">{money(&r.total.cost_usd)}</td>
                    <td class="num" data-col="avg-cost">{r.avg_cost_usd.as_deref().map_or_else(|| "–".to_owned(), money)}</td>
                    <td class="num" data-col="ttft">{r.avg_ttft_ms.map_or_else(|| "–".to_owned(), |t| format!("{t:.0} ms"))}</td>
                    <td class="num" data-col="tps">{r.avg_tokens_per_s.map_or_else(|| "–".to_owned(), |t| format!("{t:.1}"))}</td>
                    <td class="num" data-col="errors" title=format!("{} of {} attempts failed", r.errors, r.attempts)>{pct(r.error_rate)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="spend-table" id="spend-table">
            <thead>
                <tr>
                    <th>{GROUPINGS.iter().find(|g| g.0 == by).map_or("Group", |g| g.1)}</th>
                    <th class="num">"Requests"</th>
                    <th class="num">"Tokens in"</th>
                    <th class="num">"Tokens out"</th>
                    <th class="num">"Cost"</th>
                    <th class="num" title="Cost per billed request">"Avg / answer"</th>
                    <th class="num" title="Mean time to first token">"Avg TTFT"</th>
                    <th class="num" title="Mean output tokens per second">"Tok/s"</th>
                    <th class="num" title="Failed attempts over attempts that ran">"Errors"</th>
                </tr>
            </thead>
            <tbody>{lines}</tbody>
        </table>
    }
}

/// The budget editor's fields.
#[derive(Debug, Clone, Copy)]
struct BudgetForm {
    replaces: RwSignal<Option<String>>,
    name: RwSignal<String>,
    scope_kind: RwSignal<String>,
    scope_value: RwSignal<String>,
    period: RwSignal<String>,
    limit: RwSignal<String>,
    warn_pct: RwSignal<String>,
    hard: RwSignal<bool>,
    error: RwSignal<Option<String>>,
}

impl BudgetForm {
    fn new() -> Self {
        Self {
            replaces: RwSignal::new(None),
            name: RwSignal::new(String::new()),
            scope_kind: RwSignal::new("global".to_owned()),
            scope_value: RwSignal::new(String::new()),
            period: RwSignal::new("monthly".to_owned()),
            limit: RwSignal::new(String::new()),
            warn_pct: RwSignal::new("80".to_owned()),
            hard: RwSignal::new(true),
            error: RwSignal::new(None),
        }
    }

    fn clear(&self) {
        self.replaces.set(None);
        self.name.set(String::new());
        self.scope_kind.set("global".to_owned());
        self.scope_value.set(String::new());
        self.period.set("monthly".to_owned());
        self.limit.set(String::new());
        self.warn_pct.set("80".to_owned());
        self.hard.set(true);
        self.error.set(None);
    }

    fn edit(&self, b: &BudgetView) {
        self.replaces.set(Some(b.name.clone()));
        self.name.set(b.name.clone());
        let (kind, value) = b.scope.split_once(':').unwrap_or((&b.scope, ""));
        self.scope_kind.set(kind.to_owned());
        self.scope_value.set(value.to_owned());
        self.period.set(b.period.clone());
        self.limit.set(b.limit_usd.clone());
        self.warn_pct
            .set(format!("{}", (b.warn_at * 100.0).round()));
        self.hard.set(b.hard);
        self.error.set(None);
    }

    fn input(&self) -> Result<BudgetInput, String> {
        let kind = self.scope_kind.get_untracked();
        let value = self.scope_value.get_untracked().trim().to_owned();
        let scope = if kind == "global" {
            kind
        } else if value.is_empty() {
            return Err(format!("name the {kind} this budget counts"));
        } else {
            format!("{kind}:{value}")
        };
        let warn: f64 = self
            .warn_pct
            .get_untracked()
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| "the warning threshold is a percentage, e.g. 80".to_owned())?;
        Ok(BudgetInput {
            name: self.name.get_untracked().trim().to_owned(),
            replaces: self.replaces.get_untracked(),
            scope,
            period: self.period.get_untracked(),
            limit_usd: self
                .limit
                .get_untracked()
                .trim()
                .trim_start_matches('$')
                .to_owned(),
            warn_at: warn / 100.0,
            hard: self.hard.get_untracked(),
        })
    }
}

#[component]
fn BudgetCard(budget: BudgetView, form: BudgetForm, version: RwSignal<u64>) -> impl IntoView {
    let limit = nanos(&budget.limit_usd).max(1);
    let spent = nanos(&budget.spent_usd);
    let share = spent as f64 / limit as f64;
    let width = format!("width: {:.1}%", (share * 100.0).clamp(0.0, 100.0));
    let marker = format!("left: {:.1}%", (budget.warn_at * 100.0).clamp(0.0, 100.0));
    let held = nanos(&budget.held_usd);
    let held_text = if held > 0 {
        format!(" (+{} in flight)", format_usd(held))
    } else {
        String::new()
    };
    let summary = format!(
        "{} of {} ({:.0}%){held_text} · {} left",
        money(&budget.spent_usd),
        money(&budget.limit_usd),
        share * 100.0,
        money(&budget.remaining_usd)
    );
    let projected = nanos(&budget.projected_usd);
    let over = projected > limit;
    let pace = format!(
        "At this pace: {} by {} (period {} – {}){}",
        money(&budget.projected_usd),
        budget.period_end,
        budget.period_start,
        budget.period_end,
        if over { " — over the limit" } else { "" }
    );
    let kind = if budget.hard {
        "hard stop"
    } else {
        "warn only"
    };
    let head = format!("{} · {} · {kind}", budget.scope, budget.period);
    let state_class = format!("budget budget-{}", budget.state);
    let name = budget.name.clone();
    let name_for_delete = budget.name.clone();
    let to_edit = budget.clone();
    let delete = move |()| {
        let name = name_for_delete.clone();
        spawn_local(async move {
            match ipc::remove_budget(&name).await {
                Ok(()) => version.update(|v| *v += 1),
                Err(e) => form.error.set(Some(e.message)),
            }
        });
    };
    view! {
        <div class=state_class data-budget=name.clone()>
            <div class="budget-head">
                <span class="budget-name">{name.clone()}</span>
                <span class="dim">{head}</span>
                <span class="budget-state">{budget.state.clone()}</span>
                <span class="spacer"></span>
                <button class="small budget-edit" on:click=move |_| form.edit(&to_edit)>"Edit"</button>
                <ConfirmButton label="Delete" class="small danger budget-delete"
                    question=format!("Delete the budget {name}?") on_confirm=Callback::new(delete) />
            </div>
            <div class="budget-bar" title=format!("warning from {:.0}%", budget.warn_at * 100.0)>
                <div class="budget-fill" style=width></div>
                <div class="budget-warn-mark" style=marker></div>
            </div>
            <div class="budget-summary">{summary}</div>
            <div class="budget-pace" class:over=over>{pace}</div>
            <div class="dim budget-effect">{budget.effect.clone()}</div>
        </div>
    }
}

#[component]
fn BudgetEditor(form: BudgetForm, version: RwSignal<u64>) -> impl IntoView {
    let saving = RwSignal::new(false);
    let save = move |_| {
        let input = match form.input() {
            Ok(i) => i,
            Err(e) => {
                form.error.set(Some(e));
                return;
            }
        };
        saving.set(true);
        spawn_local(async move {
            match ipc::save_budget(&input).await {
                Ok(()) => {
                    form.clear();
                    version.update(|v| *v += 1);
                }
                Err(e) => form.error.set(Some(e.message)),
            }
            saving.set(false);
        });
    };
    let needs_value = move || form.scope_kind.get() != "global";
    let title = move || {
        if form.replaces.get().is_some() {
            "Edit budget"
        } else {
            "New budget"
        }
    };
    view! {
        <div class="budget-editor" id="budget-editor">
            <div class="budget-editor-title">{title}</div>
            <div class="budget-fields">
                <label>"Name"
                    <input id="budget-name" type="text" placeholder="monthly" prop:value=move || form.name.get() on:input=move |ev| form.name.set(event_target_value(&ev)) />
                </label>
                <label>"Counts"
                    <select id="budget-scope" prop:value=move || form.scope_kind.get() on:change=move |ev| form.scope_kind.set(event_target_value(&ev))>
                        <option value="global">"Everything"</option>
                        <option value="provider">"One provider"</option>
                        <option value="route">"One route"</option>
                        <option value="tag">"One tag"</option>
                    </select>
                </label>
                <Show when=needs_value>
                    <label>{move || format!("{} name", form.scope_kind.get())}
                        <input id="budget-scope-value" type="text" placeholder="openai" prop:value=move || form.scope_value.get() on:input=move |ev| form.scope_value.set(event_target_value(&ev)) />
                    </label>
                </Show>
                <label>"Period"
                    <select id="budget-period" prop:value=move || form.period.get() on:change=move |ev| form.period.set(event_target_value(&ev))>
                        <option value="daily">"Daily (UTC)"</option>
                        <option value="monthly">"Monthly (UTC)"</option>
                    </select>
                </label>
                <label>"Limit (USD)"
                    <input id="budget-limit" type="text" inputmode="decimal" placeholder="20.00" prop:value=move || form.limit.get() on:input=move |ev| form.limit.set(event_target_value(&ev)) />
                </label>
                <label>"Warn at (%)"
                    <input id="budget-warn" type="text" inputmode="numeric" prop:value=move || form.warn_pct.get() on:input=move |ev| form.warn_pct.set(event_target_value(&ev)) />
                </label>
                <label class="toggle budget-hard">
                    <input id="budget-hard" type="checkbox" prop:checked=move || form.hard.get() on:change=move |ev| form.hard.set(event_target_checked(&ev)) />
                    "Hard stop (refuse requests that would exceed it)"
                </label>
            </div>
            <div class="budget-editor-actions">
                <button class="primary small" id="budget-save" on:click=save disabled=move || saving.get()>"Save budget"</button>
                <Show when=move || form.replaces.get().is_some()>
                    <button class="small" id="budget-cancel" on:click=move |_| form.clear()>"Cancel"</button>
                </Show>
                {move || form.error.get().map(|e| view! { <span class="budget-error" id="budget-error" role="alert">{e}</span> })}
            </div>
        </div>
    }
}

#[component]
pub fn SpendPage() -> impl IntoView {
    let days = RwSignal::new(30u32);
    let by = RwSignal::new("provider".to_owned());
    let version = RwSignal::new(0u64);
    // A budget saved or removed here changes the status bar's readout too.
    if let Some(compare) = use_context::<crate::pages::CompareState>() {
        Effect::new(move |first: Option<()>| {
            version.track();
            if first.is_some() {
                compare.spend_changed.update(|v| *v += 1);
            }
        });
    }
    let filter = RwSignal::new(None::<Option<String>>);
    let data = RwSignal::new(None::<Result<SpendOverview, String>>);
    let form = BudgetForm::new();
    let export_from = RwSignal::new(String::new());
    let export_to = RwSignal::new(String::new());
    let export_result = RwSignal::new(None::<Result<String, String>>);
    let latest = StoredValue::new(0u64);

    Effect::new(move |_| {
        let (d, b, _) = (days.get(), by.get(), version.get());
        let ticket = latest.get_value() + 1;
        latest.set_value(ticket);
        spawn_local(async move {
            let result = ipc::spend_overview(d, &b).await.map_err(|e| e.message);
            // A slower answer to an older question is dropped, and so is
            // any answer once the page is gone.
            if latest.try_get_value() != Some(ticket) {
                return;
            }
            if let Ok(o) = &result
                && export_to.get_untracked().is_empty()
                && let Some(today) = o.days.last()
            {
                export_to.set(today.clone());
                export_from.set(format!("{}01", today.get(..8).unwrap_or(today)));
            }
            data.set(Some(result));
        });
    });

    let range_button = move |n: u32| {
        let id = format!("range-{n}");
        view! {
            <button class="small seg-btn" id=id class:active=move || days.get() == n on:click=move |_| days.set(n)>{format!("{n} days")}</button>
        }
    };
    let by_button = move |(value, label): (&'static str, &'static str)| {
        let id = format!("by-{value}");
        view! {
            <button class="small seg-btn" id=id class:active=move || by.get() == value
                on:click=move |_| { filter.set(None); by.set(value.to_owned()); }>{label}</button>
        }
    };
    let export = move |_| {
        let (from, to) = (export_from.get_untracked(), export_to.get_untracked());
        spawn_local(async move {
            export_result.set(Some(
                ipc::export_spend(from.trim(), to.trim())
                    .await
                    .map_err(|e| e.message),
            ));
        });
    };

    let body = move || {
        let Some(result) = data.get() else {
            return view! { <p class="dim">"Loading spend…"</p> }.into_any();
        };
        let o = match result {
            Ok(o) => o,
            Err(e) => {
                return view! { <p class="err" id="spend-error">{format!("Spend unavailable: {e}")}</p> }
                    .into_any();
            }
        };
        let chart = {
            let o = o.clone();
            move || chart_svg(&o, &filter.get())
        };
        let by_now = o.by.clone();
        let filter_label = {
            let by_now = by_now.clone();
            move || {
                filter.get().map(|k| {
                    let label = key_label(&by_now, k.as_deref());
                    view! {
                        <span class="chart-filter" id="chart-filter">
                            {format!("Showing only {label}")}
                            <button class="icon" title="Show every group" on:click=move |_| filter.set(None)>"×"</button>
                        </span>
                    }
                })
            }
        };
        let legend = o
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let swatch = format!("swatch s{}", i % SERIES);
                view! { <span class="legend-item"><span class=swatch></span>{key_label(&o.by, r.key.as_deref())}</span> }
            })
            .collect_view();
        let empty = o.rows.is_empty();
        let budgets = o.budgets.clone();
        let no_budgets = budgets.is_empty();
        view! {
            <div class="spend-cards">
                <TotalCard id="spend-today" label="Today" total=o.today.clone() />
                <TotalCard id="spend-week" label="This week" total=o.week.clone() />
                <TotalCard id="spend-month" label="This month" total=o.month.clone() />
            </div>
            {o.problems.iter().map(|p| view! { <p class="warn">{p.clone()}</p> }).collect_view()}
            <div class="spend-chart-wrap">
                <div class="spend-chart-head">
                    <span class="section-label">"Cost per day (UTC)"</span>
                    {filter_label}
                    <span class="legend">{legend}</span>
                </div>
                <div class="spend-chart" id="spend-chart" inner_html=chart></div>
            </div>
            {if empty {
                view! { <p class="dim" id="spend-empty">"Nothing spent in this period yet: answers with a known price appear here."</p> }.into_any()
            } else {
                view! { <div class="spend-table-wrap"><SpendTable by=by_now rows=o.rows.clone() filter=filter /></div> }.into_any()
            }}
            <h2 class="section-title">"Budgets"</h2>
            <div class="budgets" id="budgets">
                {if no_budgets {
                    view! { <p class="dim" id="no-budgets">"No budget yet. A budget counts spend per day or month (UTC) and warns, or refuses requests, when it would be exceeded."</p> }.into_any()
                } else {
                    budgets.into_iter().map(|b| view! { <BudgetCard budget=b form=form version=version /> }).collect_view().into_any()
                }}
            </div>
        }
        .into_any()
    };

    view! {
        <section class="page spend-page" id="spend">
            <header class="page-header">
                <h1>"Spend"</h1>
                <p class="page-lede">"What your answers cost, exactly, and how close you are to your limits. Days, weeks (Monday to Sunday) and months are UTC."</p>
            </header>
            <div class="spend-controls">
                <div class="seg-group" role="group" aria-label="Period">
                    {range_button(7)}{range_button(30)}{range_button(90)}
                </div>
                <div class="seg-group" role="group" aria-label="Group by">
                    {GROUPINGS.into_iter().map(by_button).collect_view()}
                </div>
            </div>
            {body}
            <BudgetEditor form=form version=version />
            <h2 class="section-title">"Export"</h2>
            <div class="spend-export">
                <label>"From" <input id="export-from" type="text" placeholder="YYYY-MM-DD" prop:value=move || export_from.get() on:input=move |ev| export_from.set(event_target_value(&ev)) /></label>
                <label>"To" <input id="export-to" type="text" placeholder="YYYY-MM-DD" prop:value=move || export_to.get() on:input=move |ev| export_to.set(event_target_value(&ev)) /></label>
                <button class="small" id="export-csv" on:click=export>"Export ledger as CSV"</button>
                {move || export_result.get().map(|r| match r {
                    Ok(path) => view! { <span class="export-path" id="export-path">{format!("Saved to {path}")}</span> }.into_any(),
                    Err(e) => view! { <span class="budget-error" id="export-error">{e}</span> }.into_any(),
                })}
            </div>
        </section>
    }
}
