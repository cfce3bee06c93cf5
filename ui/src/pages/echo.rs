//! The echo round trip: text typed here goes to the Rust backend, which
//! streams it back piece by piece over an IPC channel. It proves the whole
//! UI → Rust → UI path and shows what the backend measured.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{EchoEvent, EchoRequest, EchoSummary};

use crate::ipc;

#[derive(Debug, Clone, PartialEq)]
enum RunState {
    Idle,
    Streaming,
    Done(EchoSummary),
    Failed(String),
}

#[component]
pub fn EchoPage() -> impl IntoView {
    let input = RwSignal::new(String::from(
        "Hello from Switchboard — streamed back by Rust ✓",
    ));
    let output = RwSignal::new(String::new());
    let received = RwSignal::new(0u64);
    let state = RwSignal::new(RunState::Idle);

    let send = move || {
        let text = input.get_untracked();
        if state.get_untracked() == RunState::Streaming || text.trim().is_empty() {
            return;
        }
        output.set(String::new());
        received.set(0);
        state.set(RunState::Streaming);
        spawn_local(async move {
            let request = EchoRequest { text, gap_ms: 15 };
            let result = ipc::echo_stream(&request, move |event| match event {
                EchoEvent::Delta { text } => {
                    output.update(|o| o.push_str(&text));
                    received.update(|n| *n += 1);
                }
                EchoEvent::Done(_) => {}
            })
            .await;
            state.set(match result {
                Ok(summary) => RunState::Done(summary),
                Err(e) => RunState::Failed(e.message),
            });
        });
    };

    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            send();
        }
    };

    let summary = move || match state.get() {
        RunState::Idle => view! { <span class="readout dim">"Nothing sent yet."</span> }.into_any(),
        RunState::Streaming => view! {
            <span class="readout">{move || format!("Streaming… {} pieces", received.get())}</span>
        }
        .into_any(),
        RunState::Done(s) => view! {
            <span class="readout ok" data-state="done">
                {format!(
                    "{} pieces · {} bytes · first piece {} ms · total {} ms",
                    s.pieces, s.bytes, s.first_piece_ms, s.total_ms
                )}
            </span>
        }
        .into_any(),
        RunState::Failed(msg) => view! {
            <span class="readout err" data-state="failed">{msg}</span>
        }
        .into_any(),
    };

    view! {
        <section class="page echo-page">
            <header class="page-header">
                <h1>"Echo round trip"</h1>
                <p class="page-lede">
                    "Text sent from this window to the Rust engine and streamed back piece by piece over an IPC channel. Press Enter to send, Shift+Enter for a new line."
                </p>
            </header>
            <div class="composer">
                <textarea
                    id="echo-input"
                    rows="3"
                    aria-label="Text to echo"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    on:keydown=on_key
                ></textarea>
                <button
                    id="echo-send"
                    class="primary"
                    on:click=move |_| send()
                    disabled=move || state.get() == RunState::Streaming
                >
                    "Send"
                </button>
            </div>
            <article class="answer" aria-live="polite">
                <pre id="echo-output" class="answer-text">{move || output.get()}</pre>
                <footer class="answer-footer" id="echo-summary">{summary}</footer>
            </article>
        </section>
    }
}
