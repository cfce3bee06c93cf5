//! A searchable model picker: provider, model, price per million tokens and
//! context window for every model in the catalog, the routes of config.toml,
//! and any `provider:model` typed by hand (a model a provider serves, listed
//! or not). It is a combobox: the arrow keys move through the list, Enter
//! picks, Escape closes it and gives the focus back to its button.

use std::sync::atomic::{AtomicU64, Ordering};

use leptos::html;
use leptos::prelude::*;
use switchboard_protocol::{CatalogModel, CatalogView};

fn context(n: Option<u64>) -> String {
    match n {
        Some(n) if n >= 1_000_000 => format!("{:.1}M ctx", n as f64 / 1_000_000.0),
        Some(n) if n >= 1_000 => format!("{}k ctx", n / 1_000),
        Some(n) => format!("{n} ctx"),
        None => "ctx ?".to_owned(),
    }
}

fn price(m: &CatalogModel) -> String {
    match (&m.input_usd_per_mtok, &m.output_usd_per_mtok) {
        (Some(i), Some(o)) if i == "0" && o == "0" => "free".to_owned(),
        (Some(i), Some(o)) => format!("${i} / ${o}"),
        _ => "price ?".to_owned(),
    }
}

fn matches(m: &CatalogModel, query: &str) -> bool {
    let hay = format!(
        "{} {} {}",
        m.provider,
        m.model,
        m.name.as_deref().unwrap_or("")
    )
    .to_lowercase();
    query
        .to_lowercase()
        .split_whitespace()
        .all(|w| hay.contains(w))
}

/// How a target reads in a pane header: the model (or `@route`) first, then
/// who serves it.
pub fn target_parts(target: &str) -> (String, String) {
    if let Some(route) = target.strip_prefix('@') {
        return (format!("@{route}"), "route".to_owned());
    }
    match target.split_once(':') {
        Some((provider, model)) => (model.to_owned(), provider.to_owned()),
        None => (target.to_owned(), String::new()),
    }
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    target: String,
    title: String,
    detail: String,
    price: Option<String>,
    ctx: Option<String>,
    class: &'static str,
}

fn choices(catalog: Option<&CatalogView>, query: &str) -> Vec<Choice> {
    let mut out = Vec::new();
    let q = query.trim();
    if q.contains(':') {
        out.push(Choice {
            target: q.to_owned(),
            title: format!("Use “{q}”"),
            detail: String::new(),
            price: None,
            ctx: None,
            class: "picker-item custom",
        });
    }
    let Some(c) = catalog else {
        return out;
    };
    let lower = q.to_lowercase();
    for r in &c.routes {
        let hay = format!("@{} {}", r.name, r.targets.join(" ")).to_lowercase();
        if lower.split_whitespace().all(|w| hay.contains(w)) {
            out.push(Choice {
                target: format!("@{}", r.name),
                title: format!("@{}", r.name),
                detail: format!("route · {} · {}", r.strategy, r.targets.join(" → ")),
                price: None,
                ctx: None,
                class: "picker-item route",
            });
        }
    }
    out.extend(
        c.models
            .iter()
            .filter(|m| matches(m, q))
            .take(200)
            .map(|m| Choice {
                target: m.target(),
                title: m.name.clone().unwrap_or_else(|| m.model.clone()),
                detail: format!("{} · {}", m.provider, m.model),
                price: Some(price(m)),
                ctx: Some(context(m.context_window)),
                class: "picker-item",
            }),
    );
    out
}

fn next_picker() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[component]
pub fn ModelPicker(
    #[prop(into)] target: ArcRwSignal<String>,
    catalog: RwSignal<Option<CatalogView>>,
) -> impl IntoView {
    let list_id = format!("picker-list-{}", next_picker());
    let open = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let active = RwSignal::new(0usize);
    let search = NodeRef::<html::Input>::new();
    let button = NodeRef::<html::Button>::new();
    let found = Memo::new(move |_| catalog.with(|c| choices(c.as_ref(), &query.get())));
    let close = move || {
        open.set(false);
        query.set(String::new());
        active.set(0);
        if let Some(b) = button.get_untracked() {
            let _ = b.focus();
        }
    };
    let pick = {
        let target = target.clone();
        move |t: String| {
            target.set(t);
            close();
        }
    };
    Effect::new(move |_| {
        if open.get()
            && let Some(input) = search.get()
        {
            let _ = input.focus();
        }
    });
    let on_key = {
        let pick = pick.clone();
        move |ev: web_sys::KeyboardEvent| {
            let n = found.with_untracked(Vec::len);
            match ev.key().as_str() {
                // The picker's own: Escape closes it and stops nothing else.
                "Escape" => {
                    ev.prevent_default();
                    ev.stop_propagation();
                    close();
                }
                "ArrowDown" if n > 0 => {
                    ev.prevent_default();
                    active.update(|a| *a = (*a + 1).min(n - 1));
                }
                "ArrowUp" => {
                    ev.prevent_default();
                    active.update(|a| *a = a.saturating_sub(1));
                }
                "Home" => active.set(0),
                "End" if n > 0 => active.set(n - 1),
                "Enter" => {
                    ev.prevent_default();
                    let chosen = found.with_untracked(|f| {
                        f.get(active.get_untracked().min(n.saturating_sub(1)))
                            .map(|c| c.target.clone())
                    });
                    if let Some(t) = chosen {
                        pick(t);
                    }
                }
                _ => {}
            }
        }
    };
    let label = {
        let target = target.clone();
        move || target_parts(&target.get())
    };
    let label2 = label.clone();
    let title = {
        let target = target.clone();
        move || target.get()
    };
    let option_id = {
        let list_id = list_id.clone();
        move |i: usize| format!("{list_id}-{i}")
    };
    let option_id2 = option_id.clone();
    let list_id2 = list_id.clone();
    view! {
        <div class="picker">
            <button class="picker-button" node_ref=button title=title aria-haspopup="listbox"
                aria-expanded=move || open.get().to_string()
                aria-label=move || { let (m, p) = label2(); if m.is_empty() { "Choose a model".to_owned() } else { format!("Model: {m} ({p}). Change") } }
                on:click=move |_| open.update(|o| *o = !*o)>
                {move || {
                    let (model, provider) = label();
                    if model.is_empty() {
                        view! { <span class="picker-label"><span class="picker-model">"Choose a model…"</span></span> }.into_any()
                    } else {
                        view! {
                            <span class="picker-label">
                                <span class="picker-model">{model}</span>
                                <span class="picker-provider">{provider}</span>
                            </span>
                        }
                        .into_any()
                    }
                }}
            </button>
            <Show when=move || open.get()>
                <div class="picker-pop">
                    <input class="picker-search" placeholder="Search models, or type provider:model" node_ref=search
                        role="combobox" aria-label="Search models" aria-autocomplete="list" aria-expanded="true"
                        aria-controls=list_id.clone()
                        aria-activedescendant={ let option_id = option_id.clone(); move || option_id(active.get()) }
                        prop:value=move || query.get()
                        on:input=move |ev| { query.set(event_target_value(&ev)); active.set(0); }
                        on:keydown=on_key.clone() />
                    <div class="picker-list" role="listbox" id=list_id2.clone() aria-label="Models">
                        {
                            let pick = pick.clone();
                            let option_id = option_id2.clone();
                            move || found.get().into_iter().enumerate().map(|(i, c)| {
                                let pick = pick.clone();
                                let t = c.target.clone();
                                view! {
                                    <button class=c.class role="option" id=option_id(i) tabindex="-1"
                                        class:active=move || active.get() == i
                                        aria-selected=move || (active.get() == i).to_string()
                                        on:mouseenter=move |_| active.set(i)
                                        on:click=move |_| pick(t.clone())>
                                        <span class="pi-model">{c.title}</span>
                                        {(!c.detail.is_empty()).then(|| view! { <span class="pi-provider">{c.detail}</span> })}
                                        {c.price.map(|p| view! { <span class="pi-price" title="USD per million input / output tokens">{p}</span> })}
                                        {c.ctx.map(|x| view! { <span class="pi-ctx">{x}</span> })}
                                    </button>
                                }
                            }).collect_view()
                        }
                    </div>
                </div>
            </Show>
        </div>
    }
}
