//! Settings: providers and their keys (kept in the OS keychain: the page
//! only ever sees the last four characters), a Test button that calls the
//! provider with its key and shows the classified result, and the local
//! model servers found on this machine.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{CatalogView, KeyState, LocalServer, ProviderCheck, ProviderSummary};

use crate::ipc;

fn key_label(k: &KeyState) -> (String, &'static str) {
    match k {
        KeyState::Keychain { last4 } => (format!("••••{last4} (keychain)"), "ok"),
        KeyState::Environment { last4 } => (format!("••••{last4} (environment)"), "ok"),
        KeyState::Missing => ("no key".to_owned(), "warn"),
        KeyState::NotNeeded => ("no key needed (local)".to_owned(), "dim"),
        KeyState::Unknown { reason } => (format!("keychain unavailable: {reason}"), "err"),
    }
}

#[component]
fn ProviderRow(provider: ProviderSummary) -> impl IntoView {
    let key = RwSignal::new(provider.key.clone());
    let draft = RwSignal::new(String::new());
    let check = RwSignal::new(None::<ProviderCheck>);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let id = StoredValue::new(provider.id.clone());

    let save = move |_| {
        let value = draft.get_untracked();
        if value.trim().is_empty() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match ipc::set_key(&id.get_value(), &value).await {
                Ok(state) => {
                    key.set(state);
                    draft.set(String::new());
                    problem.set(None);
                }
                Err(e) => problem.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let remove = move |_| {
        busy.set(true);
        spawn_local(async move {
            match ipc::remove_key(&id.get_value()).await {
                Ok(state) => {
                    key.set(state);
                    check.set(None);
                }
                Err(e) => problem.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let test = move |_| {
        busy.set(true);
        check.set(None);
        spawn_local(async move {
            match ipc::test_provider(&id.get_value()).await {
                Ok(c) => check.set(Some(c)),
                Err(e) => problem.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let has_stored = move || matches!(key.get(), KeyState::Keychain { .. });
    let key_url = provider.key_url.clone();
    view! {
        <div class="provider-row" data-provider=provider.id.clone()>
            <div class="provider-main">
                <div class="provider-name">
                    <strong>{provider.name.clone()}</strong>
                    <span class="dim">{format!(" {} · {}", provider.id, provider.kind)}</span>
                </div>
                <div class="provider-url dim">{provider.base_url.clone()}</div>
            </div>
            <div class="provider-key">
                <span class=move || format!("key-state {}", key_label(&key.get()).1)>{move || key_label(&key.get()).0}</span>
                <div class="key-edit">
                    <input type="password" class="key-input" autocomplete="off" spellcheck="false"
                        placeholder=move || if has_stored() { "Replace key…" } else { "Paste API key…" }
                        prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev)) />
                    <button class="small key-save" on:click=save disabled=move || busy.get() || draft.get().trim().is_empty()>"Save"</button>
                    <Show when=has_stored>
                        <button class="small key-remove" on:click=remove disabled=move || busy.get()>"Remove"</button>
                    </Show>
                    <button class="small key-test" on:click=test disabled=move || busy.get()>"Test"</button>
                </div>
                {key_url.map(|u| view! { <div class="dim small-note">{format!("Get a key: {u}")}</div> })}
                {move || check.get().map(|c| {
                    let class = if c.ok { "check ok" } else { "check err" };
                    let kind = c.kind.clone().map(|k| format!("{k}: ")).unwrap_or_default();
                    view! { <div class=class>{format!("{kind}{}", c.message)}</div> }
                })}
                {move || problem.get().map(|p| view! { <div class="check err">{p}</div> })}
            </div>
        </div>
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let catalog = LocalResource::new(ipc::list_catalog);
    let local = RwSignal::new(None::<Vec<LocalServer>>);
    let scan = move || {
        local.set(None);
        spawn_local(async move {
            local.set(Some(ipc::detect_local().await.unwrap_or_default()));
        });
    };
    scan();
    let providers = move || {
        catalog.get().map(|r| match r {
            Ok(CatalogView { providers, config_problems, .. }) => view! {
                {config_problems.into_iter().map(|p| view! { <div class="check err config-problem">{p}</div> }).collect_view()}
                <div class="provider-list" id="provider-list">
                    {providers.into_iter().map(|p| view! { <ProviderRow provider=p /> }).collect_view()}
                </div>
            }
            .into_any(),
            Err(e) => view! { <div class="check err">{e.message}</div> }.into_any(),
        })
    };
    view! {
        <section class="page settings-page" id="settings">
            <header class="page-header">
                <h1>"Settings"</h1>
                <p class="page-lede">"Keys are stored in your OS keychain (service \"switchboard\", one entry per provider) and never written to disk by Switchboard; this page only ever shows their last four characters."</p>
            </header>
            <h2 class="section-title">"Local servers"
                <button class="small" id="rescan-local" on:click=move |_| scan()>"Scan again"</button>
            </h2>
            <div id="local-servers">
                {move || match local.get() {
                    None => view! { <p class="dim">"Looking for Ollama (11434), LM Studio (1234), llama.cpp (8080) and vLLM (8000)…"</p> }.into_any(),
                    Some(list) if list.is_empty() => view! { <p class="dim">"No local server answered on the usual ports (Ollama 11434, LM Studio 1234, llama.cpp 8080, vLLM 8000)."</p> }.into_any(),
                    Some(list) => view! {
                        <ul class="local-list">
                            {list.into_iter().map(|s| view! {
                                <li><strong>{s.name.clone()}</strong>{format!(" at {} — {} models: {}", s.base_url, s.models.len(), s.models.join(", "))}</li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </div>
            <h2 class="section-title">"Providers"</h2>
            <Suspense fallback=|| view! { <p class="dim">"Loading providers…"</p> }>{providers}</Suspense>
        </section>
    }
}
