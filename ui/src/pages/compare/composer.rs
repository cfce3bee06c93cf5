//! The composer: one prompt for every pane (or the one chosen next to
//! Send), Enter to send, Shift+Enter for a new line, Esc to stop. A prompt
//! leaves the composer only once it is sent; when budgets would stop or
//! move a pane, the composer asks first ("Send anyway" / "Cancel").
//! Images and PDFs come with the file button, a drop or a paste (see
//! [`super::attachments`]); the panes that cannot take them are listed
//! before sending.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::attachments::{ACCEPT, AttachmentChip, files_of, input_files};
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
        state.any_streaming()
            || state.checking.get()
            || state.attaching.get() > 0
            || state.pending.with(Option::is_some)
    };
    // What is attached, checked again whenever it or a pane's model changes.
    Effect::new(move |_| {
        state.attached.track();
        state
            .panes
            .with(|ps| ps.iter().for_each(|p| p.target.track()));
        spawn_local(async move { state.check_attached().await });
    });
    let file_input = NodeRef::<leptos::html::Input>::new();
    let on_drop = move |ev: web_sys::DragEvent| {
        let files = files_of(ev.data_transfer());
        if !files.is_empty() {
            ev.prevent_default();
            state.add_files(files);
        }
    };
    let on_paste = move |ev: web_sys::ClipboardEvent| {
        let files = files_of(ev.clipboard_data());
        // Text pastes as text.
        if !files.is_empty() {
            ev.prevent_default();
            state.add_files(files);
        }
    };
    let chips = move || {
        state
            .attached
            .get()
            .into_iter()
            .map(|a| {
                let id = a.id.clone();
                view! {
                    <AttachmentChip attachment=a
                        on_remove=Callback::new(move |()| state.remove_attachment(&id)) />
                }
            })
            .collect_view()
    };
    let refusals = move || {
        let lines = state.attach_refusals.get();
        (!lines.is_empty() && !state.attached.with(Vec::is_empty)).then(|| {
            view! {
                <ul class="attach-refusals" id="attach-refusals" role="status">
                    {lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                </ul>
            }
        })
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
        <div class="composer compare-composer" id="composer-box"
            on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
            on:drop=on_drop>
            <div class="composer-main">
                <div class="composer-attachments" id="composer-attachments"
                    class:empty=move || state.attached.with(Vec::is_empty) && state.attaching.get() == 0>
                    {chips}
                    {move || (state.attaching.get() > 0).then(|| view! { <span class="attaching">"Attaching…"</span> })}
                </div>
                {refusals}
                <textarea id="composer" rows="2" aria-label="Prompt"
                    placeholder="Ask every pane… (Enter sends, Shift+Enter for a new line, Esc stops; drop or paste images and PDFs)"
                    prop:value=move || state.draft.get() on:input=move |ev| state.draft.set(event_target_value(&ev))
                    on:keydown=on_key on:paste=on_paste></textarea>
            </div>
            <div class="composer-side">
                <input type="file" id="attach-input" multiple accept=ACCEPT hidden node_ref=file_input aria-label="Images or PDFs to attach"
                    on:change=move |ev| state.add_files(input_files(&ev)) />
                <button id="attach" class="small" title="Attach images or PDFs" aria-label="Attach images or PDFs"
                    on:click=move |_| {
                        if let Some(input) = file_input.get() {
                            input.click();
                        }
                    }>"Attach"</button>
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
