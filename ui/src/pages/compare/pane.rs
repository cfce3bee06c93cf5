//! One pane: its header (number, model and provider, tools), its settings
//! (system prompt, temperature, max tokens), and its thread of answer cards,
//! which follows the stream until the user scrolls up.

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::answer::AnswerCard;
use super::live;
use super::state::{CompareState, Pane};
use crate::components::{ModelPicker, target_parts};

/// Copy buttons inside rendered Markdown: one listener per pane.
fn on_pane_click(ev: web_sys::MouseEvent) {
    let Some(target) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let Ok(Some(button)) = target.closest(".copy-btn") else {
        return;
    };
    let Some(code) = button
        .closest(".code-block")
        .ok()
        .flatten()
        .and_then(|b| b.query_selector("code").ok().flatten())
    else {
        return;
    };
    let text = code.text_content().unwrap_or_default();
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(&text);
        button.set_text_content(Some("Copied"));
    }
}

#[component]
fn PaneSettings(pane: Pane) -> impl IntoView {
    let (system, temperature, max_tokens) = (
        pane.system.clone(),
        pane.temperature.clone(),
        pane.max_tokens.clone(),
    );
    let (system2, temperature2, max_tokens2) =
        (system.clone(), temperature.clone(), max_tokens.clone());
    view! {
        <div class="pane-settings">
            <label>"System prompt"
                <textarea rows="2" prop:value=move || system.get()
                    on:change=move |ev| system2.set(event_target_value(&ev))></textarea>
            </label>
            <div class="pane-settings-row">
                <label>"Temperature"
                    <input type="number" step="0.1" min="0" max="2" placeholder="default"
                        prop:value=move || temperature.get().map(|t| t.to_string()).unwrap_or_default()
                        on:change=move |ev| temperature2.set(event_target_value(&ev).parse().ok()) />
                </label>
                <label>"Max tokens"
                    <input type="number" step="1" min="1" placeholder="default"
                        prop:value=move || max_tokens.get().map(|t| t.to_string()).unwrap_or_default()
                        on:change=move |ev| max_tokens2.set(event_target_value(&ev).parse().ok()) />
                </label>
            </div>
        </div>
    }
}

#[component]
pub fn PaneColumn(state: CompareState, pane: Pane) -> impl IntoView {
    let key = pane.key.clone();
    let number = {
        let key = key.clone();
        move || {
            state
                .panes
                .with(|ps| ps.iter().position(|p| p.key == key))
                .map_or(0, |i| i + 1)
        }
    };
    let number2 = number.clone();
    let alone = move || state.panes.with(Vec::len) < 2;
    let expanded = {
        let key = key.clone();
        move || state.expanded.get().as_deref() == Some(key.as_str())
    };
    let hidden = {
        let key = key.clone();
        move || state.expanded.get().is_some_and(|e| e != key)
    };
    let toggle_expand = {
        let key = key.clone();
        move |_| {
            state.expanded.update(|e| {
                *e = if e.as_deref() == Some(key.as_str()) {
                    None
                } else {
                    Some(key.clone())
                }
            })
        }
    };
    let remove = {
        let key = key.clone();
        move |_| state.remove_pane(&key)
    };
    let fork = pane.fork.clone();
    let fork_note = {
        let fork = fork.clone();
        move || {
            let f = fork.get()?;
            let from = state
                .pane(&f.pane)
                .map(|p| p.target.get())
                .unwrap_or_default();
            let rounds = if f.rounds == 1 {
                "its first round".to_owned()
            } else {
                format!("its first {} rounds", f.rounds)
            };
            Some(view! {
                <div class="fork-note" role="note">
                    {format!("Continues the thread of {from} for {rounds}; its own answers follow.")}
                </div>
            })
        }
    };
    let items = {
        let key = key.clone();
        move || {
            let fork = fork.get();
            let rounds = state.rounds.get();
            rounds
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let who = match &fork {
                        Some(f) if (i as u32) < f.rounds => state.answerer(&key, i),
                        _ => key.clone(),
                    };
                    r.answer(&who)
                        .map(|a| (r.clone(), i, a.clone(), who != key))
                })
                .collect::<Vec<_>>()
        }
    };
    let body = NodeRef::<html::Div>::new();
    let following = RwSignal::new(true);
    let on_scroll = move |_| {
        let Some(el) = body.get_untracked() else {
            return;
        };
        let el: web_sys::Element = el.into();
        let by_user = live::on_scroll(&el);
        following.set(el.get_attribute("data-follow").as_deref() != Some("off"));
        if by_user && state.sync_scroll.get_untracked() {
            live::sync_from(&el);
        }
    };
    let jump = move |_| {
        if let Some(el) = body.get_untracked() {
            live::jump_to_latest(&el.into());
            following.set(true);
        }
    };
    let show_settings = pane.show_settings.clone();
    let show_settings2 = show_settings.clone();
    let settings_pane = pane.clone();
    let header_label = {
        let target = pane.target.clone();
        move || {
            let (model, provider) = target_parts(&target.get());
            format!("Pane {}: {model} {provider}", number2())
        }
    };
    let blind = move || state.hides(None);
    let order = {
        let key = key.clone();
        move || {
            if !state.hides(None) {
                return String::new();
            }
            state
                .blind_order
                .with(|o| o.iter().position(|k| *k == key))
                .map(|i| format!("order: {i}"))
                .unwrap_or_default()
        }
    };
    let header_label = move || {
        if state.hides(None) {
            "Pane (model hidden until you vote)".to_owned()
        } else {
            header_label()
        }
    };
    view! {
        <section class="pane" class:hidden=hidden class:blind=blind style=order data-pane=key.clone() aria-label=header_label>
            <header class="pane-head">
                <span class="pane-number" title="Pane number (as in “Send to”)">{number}</span>
                <span class="blind-name" title="Blind mode: the model is revealed once you vote">"Model hidden"</span>
                <ModelPicker target=pane.target.clone() catalog=state.catalog />
                <div class="pane-tools">
                    <button class="icon" title="Pane settings" aria-label="Pane settings"
                        aria-expanded=move || show_settings.get().to_string()
                        on:click=move |_| show_settings2.update(|s| *s = !*s)>"⚙"</button>
                    <button class="icon" title="Expand to full width" aria-label="Expand to full width"
                        on:click=toggle_expand>{move || if expanded() { "⤡" } else { "⤢" }}</button>
                    <button class="icon remove-pane" title="Remove pane" aria-label="Remove pane" on:click=remove disabled=alone>"×"</button>
                </div>
            </header>
            <Show when={ let s = pane.show_settings.clone(); move || s.get() }>
                <PaneSettings pane=settings_pane.clone() />
            </Show>
            {fork_note}
            <div class="pane-body" data-follow="on" node_ref=body on:click=on_pane_click on:scroll=on_scroll>
                <For each=items key=|(r, _, a, _)| (r.id, a.id) let:item>
                    <AnswerCard state=state round=item.0 index=item.1 answer=item.2 inherited=item.3 />
                </For>
            </div>
            <Show when=move || !following.get()>
                <button class="small jump-latest" on:click=jump title="Scroll to the newest text and follow it again">"Jump to latest ↓"</button>
            </Show>
        </section>
    }
}
