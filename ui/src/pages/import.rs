//! Settings → Import: a ChatGPT or Claude data export's
//! `conversations.json` (or a Switchboard JSON export), chosen in the
//! native file chooser ("Choose file…") or typed as a path. Only the path
//! crosses to the backend, which reads the file itself: an export of
//! hundreds of megabytes never passes through the page. The import runs in the backend off the window's threads, with its progress
//! shown as it goes; the window stays usable meanwhile, and leaving the
//! page does not stop it (its state lives with the app, so coming back
//! shows where it is). What it did, or why the file was refused (nothing
//! is written then), is shown when it ends.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{ImportProgress, ImportSource, ImportSummary};

use crate::ipc;
use crate::pages::CompareState;

/// The import in progress or last run, kept for the app's life.
#[derive(Debug, Clone, Copy)]
pub struct ImportState {
    pub running: RwSignal<bool>,
    pub progress: RwSignal<Option<ImportProgress>>,
    pub result: RwSignal<Option<Result<ImportSummary, String>>>,
}

impl Default for ImportState {
    fn default() -> Self {
        Self::new()
    }
}

impl ImportState {
    pub fn new() -> Self {
        Self {
            running: RwSignal::new(false),
            progress: RwSignal::new(None),
            result: RwSignal::new(None),
        }
    }
}

fn source_name(source: ImportSource) -> &'static str {
    match source {
        ImportSource::Chatgpt => "ChatGPT export",
        ImportSource::Claude => "Claude export",
        ImportSource::Switchboard => "Switchboard export",
    }
}

fn plural(n: u64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// What an import did, in a sentence or two.
fn summary_text(s: &ImportSummary) -> String {
    let mut text = format!(
        "Imported {}: {} ({} new, {} updated, {} unchanged), {}.",
        source_name(s.source),
        plural(s.conversations, "conversation"),
        s.added,
        s.updated,
        s.unchanged,
        plural(s.messages, "message"),
    );
    if s.skipped_messages > 0 {
        text.push_str(&format!(
            " {} left out (system prompts, tools, hidden context).",
            plural(s.skipped_messages, "message")
        ));
    }
    if s.missing_attachments > 0 {
        text.push_str(&format!(
            " {} not in the export (noted in their messages).",
            plural(s.missing_attachments, "attached file")
        ));
    }
    text
}

#[component]
pub fn ImportSection() -> impl IntoView {
    let state = use_context::<ImportState>().unwrap_or_default();
    let compare = use_context::<CompareState>();
    let path = RwSignal::new(String::new());
    let start = move || {
        let file = path.get_untracked().trim().to_owned();
        if file.is_empty() || state.running.get_untracked() {
            return;
        }
        state.running.set(true);
        state.progress.set(None);
        state.result.set(None);
        spawn_local(async move {
            let result = ipc::import_history(&file, move |p| state.progress.set(Some(p))).await;
            if result.is_ok()
                && let Some(c) = compare
            {
                // The sidebar lists what came in.
                c.history_version.update(|v| *v += 1);
            }
            state.result.set(Some(result.map_err(|e| e.message)));
            state.running.set(false);
        });
    };
    let choosing = RwSignal::new(false);
    let choose = move |_| {
        if choosing.get_untracked() {
            return;
        }
        choosing.set(true);
        spawn_local(async move {
            match ipc::choose_import_file().await {
                Ok(Some(file)) => path.set(file),
                // Cancelled: the form stays as it was.
                Ok(None) => {}
                Err(e) => state
                    .result
                    .set(Some(Err(format!("the file chooser failed: {}", e.message)))),
            }
            choosing.set(false);
        });
    };
    let progress = move || {
        let running = state.running.get();
        state.progress.get().filter(|_| running).map(|p| {
            view! {
                <div class="import-progress" id="import-progress" role="status"
                    data-done=p.done.to_string() data-total=p.total.to_string()>
                    <progress max=p.total.max(1).to_string() value=p.done.to_string()></progress>
                    <span>{format!("Importing {}: {}/{} conversations ({} new)",
                        source_name(p.source), p.done, p.total, p.added)}</span>
                </div>
            }
        })
    };
    let result = move || {
        state.result.get().map(|r| match r {
            Ok(s) => view! { <div class="check ok" id="import-result">{summary_text(&s)}</div> }.into_any(),
            Err(why) => view! { <div class="check err" id="import-result">{format!("Not imported: {why}")}</div> }.into_any(),
        })
    };
    view! {
        <div class="import" id="import">
            <p class="dim small-note">"A ChatGPT data export's conversations.json, a Claude export's conversations.json, or a Switchboard JSON export: choose it or type its path. Importing the same file again adds nothing twice."</p>
            <div class="import-row">
                <input class="import-path" id="import-path" type="text" placeholder="/path/to/conversations.json"
                    aria-label="Export file" prop:value=move || path.get()
                    on:input=move |ev| path.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { start() } />
                <button class="small" id="import-choose" on:click=choose
                    disabled=move || choosing.get() || state.running.get()>"Choose file…"</button>
                <button class="small primary" id="import-start" on:click=move |_| start()
                    disabled=move || state.running.get()>
                    {move || if state.running.get() { "Importing…" } else { "Import" }}
                </button>
            </div>
            {progress}
            {result}
        </div>
    }
}
