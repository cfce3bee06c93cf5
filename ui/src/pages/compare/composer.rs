//! The composer: one prompt for every pane (or the one chosen next to
//! Send), Enter to send, Shift+Enter for a new line, Esc to stop. A prompt
//! leaves the composer only once it is sent; when budgets would stop or
//! move a pane, the composer asks first ("Send anyway" / "Cancel").

use leptos::prelude::*;

use super::state::CompareState;

#[component]
pub fn Composer(state: CompareState) -> impl IntoView {
    let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "Enter" if !ev.shift_key() && !ev.is_composing() => {
            ev.prevent_default();
            state.request_send();
        }
        "Escape" => {
            ev.prevent_default();
            state.stop_all();
        }
        _ => {}
    };
    let blocked = move || {
        state.any_streaming() || state.checking.get() || state.pending.with(Option::is_some)
    };
    let confirm = move || {
        state.pending.get().map(|p| {
            view! {
                <div class="budget-confirm" id="budget-confirm" role="alertdialog" aria-label="Budget warning">
                    <strong>"Budgets:"</strong>
                    <ul>{p.lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
                    <div class="budget-confirm-actions">
                        <button class="small primary" id="send-anyway" on:click=move |_| state.send_anyway()>"Send anyway"</button>
                        <button class="small" id="send-cancel" on:click=move |_| state.pending.set(None)>"Cancel"</button>
                    </div>
                </div>
            }
        })
    };
    view! {
        {confirm}
        <div class="composer compare-composer">
            <textarea id="composer" rows="2" aria-label="Prompt"
                placeholder="Ask every pane… (Enter sends, Shift+Enter for a new line, Esc stops)"
                prop:value=move || state.draft.get() on:input=move |ev| state.draft.set(event_target_value(&ev))
                on:keydown=on_key></textarea>
            <div class="composer-side">
                <select id="send-to" aria-label="Send to"
                    prop:value=move || state.only.get().unwrap_or_else(|| "all".to_owned())
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        state.only.set((v != "all").then_some(v));
                    }>
                    <option value="all">"All panes"</option>
                    {move || state.panes.get().into_iter().enumerate().map(|(i, p)| {
                        let target = p.target.clone();
                        view! { <option value=p.key.clone()>{move || {
                            let t = target.get();
                            format!("Pane {}: {}", i + 1, if t.is_empty() { "no model yet".to_owned() } else { t })
                        }}</option> }
                    }).collect_view()}
                </select>
                <button id="send" class="primary" on:click=move |_| state.request_send() disabled=blocked>"Send"</button>
            </div>
        </div>
    }
}
