//! A searchable model picker: provider, model, price per million tokens and
//! context window for every model in the catalog; a `provider:model` typed
//! by hand is accepted too (any model a provider serves, listed or not).

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

#[component]
pub fn ModelPicker(
    target: RwSignal<String>,
    catalog: RwSignal<Option<CatalogView>>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let search = NodeRef::<html::Input>::new();
    let pick = move |t: String| {
        target.set(t);
        open.set(false);
        query.set(String::new());
    };
    let found = move || {
        let q = query.get();
        catalog
            .get()
            .map(|c| {
                c.models
                    .into_iter()
                    .filter(|m| matches(m, &q))
                    .take(200)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    Effect::new(move |_| {
        if open.get()
            && let Some(input) = search.get()
        {
            let _ = input.focus();
        }
    });
    let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "Escape" => {
            ev.stop_propagation();
            open.set(false);
        }
        "Enter" => {
            let q = query.get_untracked().trim().to_owned();
            if let Some(first) = found().first() {
                pick(first.target());
            } else if q.contains(':') {
                pick(q);
            }
        }
        _ => {}
    };
    view! {
        <div class="picker">
            <button class="picker-button" title="Choose the model of this pane" on:click=move |_| open.update(|o| *o = !*o)>
                <span class="picker-label">{move || { let t = target.get(); if t.is_empty() { "Choose a model…".to_owned() } else { t } }}</span>
            </button>
            <Show when=move || open.get()>
                <div class="picker-pop">
                    <input class="picker-search" placeholder="Search models, or type provider:model" node_ref=search
                        prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) on:keydown=on_key />
                    <div class="picker-list">
                        {move || {
                            let q = query.get();
                            (q.contains(':') && !q.trim().is_empty()).then(|| {
                                let t = q.trim().to_owned();
                                let label = format!("Use “{t}”");
                                view! { <button class="picker-item custom" on:click=move |_| pick(t.clone())>{label}</button> }
                            })
                        }}
                        {move || {
                            let q = query.get().to_lowercase();
                            catalog.get().map(|c| c.routes.into_iter()
                                .filter(|r| q.split_whitespace().all(|w| format!("@{} {}", r.name, r.targets.join(" ")).to_lowercase().contains(w)))
                                .map(|r| {
                                    let t = format!("@{}", r.name);
                                    let detail = format!("route · {} · {}", r.strategy, r.targets.join(" → "));
                                    view! {
                                        <button class="picker-item route" on:click=move |_| pick(t.clone())>
                                            <span class="pi-model">{format!("@{}", r.name)}</span>
                                            <span class="pi-provider">{detail}</span>
                                        </button>
                                    }
                                }).collect_view())
                        }}
                        <For each=found key=|m| m.target() let:m>
                            {
                                let t = m.target();
                                view! {
                                    <button class="picker-item" on:click=move |_| pick(t.clone())>
                                        <span class="pi-model">{m.name.clone().unwrap_or_else(|| m.model.clone())}</span>
                                        <span class="pi-provider">{format!("{} · {}", m.provider, m.model)}</span>
                                        <span class="pi-price" title="USD per million input / output tokens">{price(&m)}</span>
                                        <span class="pi-ctx">{context(m.context_window)}</span>
                                    </button>
                                }
                            }
                        </For>
                    </div>
                </div>
            </Show>
        </div>
    }
}
