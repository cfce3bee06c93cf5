//! Settings → Local API: the switch that starts and stops the
//! OpenAI-/Anthropic-compatible endpoint on this machine, its port and
//! whether it starts with the app, the base URL to copy, live counters
//! (requests, errors, spend today), and client tokens: made here and shown
//! once, listed by name and last four characters, revoked with one click.
//! Everything is done by the backend (`switchboard-gateway`); this view
//! only sends the choices and shows the replies.
//!
//! The status is read every [`REFRESH_EVERY`] while the window is
//! visible (not while it is hidden or minimized). Each part of the view
//! reads its own memo of the status, so a poll re-renders only what
//! changed: the counters as they move, and the token list only when a
//! token was made, revoked or used, and then only that token's row (the
//! list is keyed).

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    ClientTokenInfo, CreatedClientToken, LocalApiInput, LocalApiStatus, NewClientToken, format_usd,
    usd_to_nanos,
};

use crate::ipc;

/// How often the counters are read while the page is open and visible.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

fn copy(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn when(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    String::from(d.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

#[component]
fn TokenRow(token: ClientTokenInfo, revoke: Callback<String>) -> impl IntoView {
    let name = token.name.clone();
    let mut details = vec![format!("••••{}", token.last4)];
    if let Some(tag) = &token.tag {
        details.push(format!("tag {tag}"));
    }
    if let Some(budget) = &token.budget {
        details.push(format!("budget {budget}"));
    }
    if token.record_history {
        details.push("saved in history".into());
    }
    details.push(match token.last_used_at_ms {
        Some(at) => format!("last used {}", when(at)),
        None => "never used".into(),
    });
    view! {
        <li class="token-row" data-token=token.name.clone()>
            <strong class="token-name">{token.name.clone()}</strong>
            <span class="dim token-details">{details.join(" · ")}</span>
            <button class="small token-revoke" on:click=move |_| revoke.run(name.clone())>"Revoke"</button>
        </li>
    }
}

#[component]
pub fn LocalApiSettings() -> impl IntoView {
    let status = RwSignal::new(None::<LocalApiStatus>);
    let problem = RwSignal::new(None::<String>);
    let port = RwSignal::new(String::new());
    let start_with_app = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let created = RwSignal::new(None::<CreatedClientToken>);
    let (name, tag, budget, record) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(false),
    );

    let show = move |s: LocalApiStatus| {
        if port.get_untracked().is_empty() {
            port.set(s.port.to_string());
        }
        start_with_app.set(s.start_with_app);
        status.set(Some(s));
    };
    let load = move || {
        spawn_local(async move {
            match ipc::local_api_status().await {
                Ok(s) => show(s),
                Err(e) => problem.set(Some(e.message)),
            }
        })
    };
    load();
    let visible = || {
        web_sys::window()
            .and_then(|w| w.document())
            .is_none_or(|d| !d.hidden())
    };
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if visible() {
                load();
            }
        },
        REFRESH_EVERY,
    ) {
        on_cleanup(move || handle.clear());
    }

    let apply = move |enabled: bool| {
        let Ok(p) = port.get_untracked().trim().parse::<u16>() else {
            problem.set(Some("the port is a number from 1 to 65535".into()));
            return;
        };
        let request = LocalApiInput {
            enabled,
            port: p,
            start_with_app: start_with_app.get_untracked(),
        };
        busy.set(true);
        spawn_local(async move {
            match ipc::set_local_api(&request).await {
                Ok(s) => {
                    problem.set(None);
                    show(s);
                }
                Err(e) => {
                    problem.set(Some(e.message));
                    load();
                }
            }
            busy.set(false);
        });
    };
    let running = Memo::new(move |_| status.with(|s| s.as_ref().is_some_and(|s| s.running)));
    let running = move || running.get();

    let create = move |_| {
        let optional = |s: RwSignal<String>| {
            Some(s.get_untracked().trim().to_owned()).filter(|v| !v.is_empty())
        };
        let request = NewClientToken {
            name: name.get_untracked().trim().to_owned(),
            tag: optional(tag),
            budget: optional(budget),
            record_history: record.get_untracked(),
        };
        busy.set(true);
        spawn_local(async move {
            match ipc::create_client_token(&request).await {
                Ok(made) => {
                    problem.set(None);
                    name.set(String::new());
                    tag.set(String::new());
                    budget.set(String::new());
                    record.set(false);
                    created.set(Some(made));
                    load();
                }
                Err(e) => problem.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let revoke = Callback::new(move |token: String| {
        spawn_local(async move {
            match ipc::revoke_client_token(&token).await {
                Ok(()) => load(),
                Err(e) => problem.set(Some(e.message)),
            }
        });
    });

    // Each part of the view follows only its own part of the status.
    let counts = Memo::new(move |_| {
        status.with(|s| {
            s.as_ref()
                .map(|s| (s.requests, s.errors, s.in_flight, s.spend_today_usd.clone()))
        })
    });
    let base_url = Memo::new(move |_| status.with(|s| s.as_ref().and_then(|s| s.base_url.clone())));
    let token_list = Memo::new(move |_| {
        status.with(|s| s.as_ref().map(|s| s.tokens.clone()).unwrap_or_default())
    });
    let shown_problem = Memo::new(move |_| {
        problem
            .get()
            .or_else(|| status.with(|s| s.as_ref().and_then(|s| s.problem.clone())))
    });
    let counters = move || {
        counts
            .get()
            .map(|(requests, errors, in_flight, spend_usd)| {
                let spend = usd_to_nanos(&spend_usd).map_or_else(|| spend_usd.clone(), format_usd);
                view! {
                    <div class="local-api-counters">
                        <span id="local-api-requests">{plural(requests, "request")}</span>
                        <span id="local-api-errors">{plural(errors, "error")}</span>
                        <span id="local-api-in-flight">{format!("{in_flight} running")}</span>
                        <span id="local-api-spend">{format!("{spend} today")}</span>
                    </div>
                }
            })
    };
    let address = move || {
        base_url.get().map(|url| {
            let copied = url.clone();
            view! {
                <div class="local-api-url">
                    "Base URL "<code id="local-api-url">{url}</code>
                    <button class="small" id="local-api-copy" on:click=move |_| copy(&copied)>"Copy"</button>
                </div>
            }
        })
    };
    let no_tokens = Memo::new(move |_| token_list.with(Vec::is_empty));
    let tokens = move || {
        if no_tokens.get() {
            view! { <p class="dim" id="local-api-no-tokens">"No client token yet: every request is refused (401) until you make one."</p> }.into_any()
        } else {
            // Keyed by name and last use: a poll that finds the same
            // tokens touches no row, and a used token redraws only its own.
            view! {
                <ul class="token-list" id="local-api-tokens">
                    <For
                        each=move || token_list.get()
                        key=|t| (t.name.clone(), t.last_used_at_ms)
                        let:t
                    >
                        <TokenRow token=t revoke=revoke />
                    </For>
                </ul>
            }
            .into_any()
        }
    };
    let shown_once = move || {
        created.get().map(|made| {
            let token = made.token.clone();
            view! {
                <div class="token-once" id="token-created">
                    <p>{format!("Token \"{}\": copy it now, it is shown only once (Switchboard keeps only its hash).", made.info.name)}</p>
                    <code id="token-value">{made.token.clone()}</code>
                    <button class="small" id="token-copy" on:click=move |_| copy(&token)>"Copy"</button>
                    <button class="small" id="token-done" on:click=move |_| created.set(None)>"Done"</button>
                </div>
            }
        })
    };

    view! {
        <h2 class="section-title" id="local-api-title">"Local API"</h2>
        <p class="dim small-note">"An OpenAI- and Anthropic-compatible endpoint on this machine (127.0.0.1 only): give a tool its base URL and a client token, and its requests use Switchboard's keys, routes, budgets and spend ledger (tagged with the token's name)."</p>
        <div class="local-api" id="local-api">
            <div class="local-api-row">
                <label class="local-api-switch">
                    <input type="checkbox" id="local-api-enabled" prop:checked=running
                        disabled=move || busy.get()
                        on:change=move |ev| apply(event_target_checked(&ev)) />
                    {move || if running() { "On" } else { "Off" }}
                </label>
                <label>"Port "
                    <input id="local-api-port" type="number" min="1" max="65535" class="port-input"
                        prop:value=move || port.get() on:input=move |ev| port.set(event_target_value(&ev))
                        on:change=move |_| if running() { apply(true) } />
                </label>
                <label>
                    <input type="checkbox" id="local-api-autostart" prop:checked=move || start_with_app.get()
                        on:change=move |ev| { start_with_app.set(event_target_checked(&ev)); apply(running()); } />
                    " Start with the app"
                </label>
            </div>
            {address}
            {counters}
            {move || shown_problem.get().map(|p| view! { <div class="check err" id="local-api-problem">{p}</div> })}
            <h3 class="subsection-title">"Client tokens"</h3>
            {tokens}
            {shown_once}
            <div class="token-form">
                <input id="token-name" type="text" spellcheck="false" placeholder="name (e.g. cursor)"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <input id="token-tag" type="text" spellcheck="false" placeholder="tag (optional)"
                    prop:value=move || tag.get() on:input=move |ev| tag.set(event_target_value(&ev)) />
                <input id="token-budget" type="text" spellcheck="false" placeholder="budget (optional)"
                    prop:value=move || budget.get() on:input=move |ev| budget.set(event_target_value(&ev)) />
                <label><input type="checkbox" id="token-record" prop:checked=move || record.get()
                    on:change=move |ev| record.set(event_target_checked(&ev)) />" Save its requests in history"</label>
                <button class="small" id="token-create" on:click=create
                    disabled=move || busy.get() || name.get().trim().is_empty()>"Make token"</button>
            </div>
        </div>
    }
}
