//! The compare view: one prompt to 1–8 panes, each with its own model and
//! its own thread, answers streaming side by side as Markdown with readouts
//! under each (who served it, time to first token, tokens/s, total time,
//! tokens, cost), and a running total for the conversation.
//!
//! The parts, by concern:
//! - [`state`]: the model (panes by stable key, rounds, answers) and the
//!   conversation around it;
//! - [`controller`]: send (after a budget check), stream, stop,
//!   regenerate, continue with an answer, open a saved conversation, save
//!   the pane layout;
//! - [`live`]: drawing streaming Markdown once per frame, following the
//!   stream, synchronized scrolling by round;
//! - [`attachments`]: images and PDFs added to the composer, checked
//!   against each pane's model before sending, shown in answer cards;
//! - the views: [`pane`], [`answer`], [`diff`] ("Diff with…"), [`vote`]
//!   (blind votes), [`judge`] ("Ask a judge", "Merge"), [`readouts`],
//!   [`composer`], [`toolbar`], and this page that lays them out and owns
//!   its keys.
//!
//! Esc belongs to this view: it stops the streams when pressed in the
//! composer or anywhere in the view (or with nothing focused), never when
//! typed into a field elsewhere (the history search), and the listener goes
//! with the view.

mod answer;
mod attachments;
mod composer;
mod controller;
mod diff;
mod judge;
mod live;
mod pane;
mod readouts;
mod state;
mod toolbar;
mod vote;

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::KeyState;

pub use state::CompareState;
use state::{Layout, MAX_PANES, now_ms};

use crate::ipc;

/// Narrowest a pane gets; more panes than fit scroll sideways.
const PANE_MIN_PX: u32 = 320;

#[component]
pub fn ComparePage() -> impl IntoView {
    let state = use_context::<CompareState>().unwrap_or_default();

    // Load the catalog, and give empty panes a usable model.
    spawn_local(async move {
        if let Ok(view) = ipc::list_catalog().await {
            let usable: Vec<String> = view
                .models
                .iter()
                .filter(|m| {
                    view.providers.iter().any(|p| {
                        p.id == m.provider
                            && !p.local
                            && matches!(
                                p.key,
                                KeyState::Keychain { .. } | KeyState::Environment { .. }
                            )
                    })
                })
                .map(|m| m.target())
                .collect();
            if state.rounds.with_untracked(Vec::is_empty) {
                for (pane, target) in state.panes.get_untracked().iter().zip(usable) {
                    if pane.target.get_untracked().is_empty() {
                        pane.target.set(target);
                    }
                }
            }
            // The layout of config.toml's `[ui]` when the view first opens
            // in this session; coming back to it keeps the one chosen since.
            if state.catalog.with_untracked(Option::is_none) {
                state.layout.set(view.layout);
            }
            state.catalog.set(Some(view));
        }
    });

    // The pane layout of a recorded conversation is saved as it changes.
    Effect::new(move |first: Option<()>| {
        let _ = state.layout_specs(true);
        if first.is_some() {
            state.save_layout_soon();
        }
    });
    // "Send to" never names a pane that is gone.
    Effect::new(move |_| {
        let only = state.only.get();
        if let Some(key) = only
            && !state.panes.with(|ps| ps.iter().any(|p| p.key == key))
        {
            state.only.set(None);
        }
    });

    // Esc with nothing focused (the page itself) stops the streams too;
    // typed into a field elsewhere it does not. The listener dies with the
    // view.
    let esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() != "Escape" || ev.default_prevented() {
            return;
        }
        let on_page = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_none_or(|el| matches!(el.tag_name().as_str(), "BODY" | "HTML"));
        if on_page {
            state.stop_all();
        }
    });
    on_cleanup(move || esc.remove());
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Escape" && !ev.default_prevented() {
            ev.prevent_default();
            state.stop_all();
        }
    };

    let panes_style = move || {
        let n = if state.expanded.get().is_some() {
            1
        } else {
            state.panes.with(Vec::len).clamp(1, MAX_PANES)
        };
        let columns = match state.layout.get() {
            Layout::Columns => n,
            Layout::Rows => 1,
            Layout::Grid => n.min(3),
        };
        format!("grid-template-columns: repeat({columns}, minmax({PANE_MIN_PX}px, 1fr))")
    };
    let grid = move || state.layout.get() == Layout::Grid;
    let rows = move || state.layout.get() == Layout::Rows;

    // First run: which local servers answer right now (they need no key).
    let local = RwSignal::new(None::<Vec<switchboard_protocol::LocalServer>>);
    spawn_local(async move {
        let found = ipc::detect_local().await.unwrap_or_default();
        local.try_set(Some(found));
    });
    let onboarding = move || {
        let no_targets = state
            .panes
            .with(|ps| ps.iter().all(|p| p.target.with(String::is_empty)));
        (no_targets && state.rounds.with(Vec::is_empty)).then(|| {
            let found = match local.get() {
                None => view! { <p class="dim">"Looking for local model servers…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="dim" id="no-local">"No local server answered (Ollama on 11434, LM Studio on 1234, llama.cpp on 8080, vLLM on 8000)."</p>
                }
                .into_any(),
                Some(list) => view! {
                    <ul id="local-found">
                        {list.into_iter().map(|s| {
                            let first = s.models.first().map(|m| format!("{}:{m}", s.provider));
                            view! {
                                <li>
                                    {format!("{} at {} — {} models", s.name, s.base_url, s.models.len())}
                                    {first.map(|t| {
                                        let label = format!("Use {t}");
                                        view! { <button class="small use-local" on:click=move |_| {
                                            if let Some(p) = state.panes.get_untracked().first() { p.target.set(t.clone()) }
                                        }>{label}</button> }
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
                .into_any(),
            };
            view! {
                <div class="onboarding" id="onboarding">
                    <h2>"Pick a model in each pane to start comparing"</h2>
                    <p>"Local servers need no key:"</p>
                    {found}
                    <p>"Hosted providers (OpenAI, Anthropic, Gemini, OpenRouter, Groq, …) need an API key: add one in Settings (it is kept in your OS keychain), or start the app with SWITCHBOARD_KEY_<PROVIDER> set."</p>
                </div>
            }
        })
    };
    // When the view became usable (benchmarks read it).
    let ready_at = format!("{:.1}", now_ms());

    view! {
        <section class="compare" id="compare" data-ready-ms=ready_at on:keydown=on_key>
            <toolbar::Toolbar state=state />
            {move || state.notice.get().map(|n| view! {
                <div class="notice" role="status">{n}<button class="icon" aria-label="Dismiss" on:click=move |_| state.notice.set(None)>"×"</button></div>
            })}
            {onboarding}
            <div class="panes" class:grid=grid class:rows=rows style=panes_style>
                <For each=move || state.panes.get() key=|p| (p.key.clone(), p.instance) let:pane>
                    <pane::PaneColumn state=state pane=pane />
                </For>
            </div>
            <judge::JudgePanel state=state />
            <composer::Composer state=state />
        </section>
    }
}
