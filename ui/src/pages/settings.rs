//! Settings: providers and their keys (kept in the OS keychain: the page
//! only ever sees the last four characters), a Test button that calls the
//! provider with its key and shows the classified result, the local
//! model servers found on this machine, and the parts of config.toml a
//! person edits most: providers (on/off, base URL, a custom
//! OpenAI-compatible server) and routes. Every config edit is validated and
//! written atomically by the engine; a refused one is shown inline with the
//! file, line and field, and the file is left as it was. The Local API
//! section is its own component ([`LocalApiSettings`]); Import brings
//! history from ChatGPT and Claude exports ([`super::import`]). The page
//! ends with the About panel (version, data directory, where keys are kept).

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    CatalogView, KeyState, LocalServer, NewProvider, ProviderCheck, ProviderSummary, RouteSpec,
    RouteSummary, SaveRoute,
};

use crate::components::{AboutPanel, ConfirmButton, LocalApiSettings, ModelPicker};
use crate::ipc;
use crate::pages::CompareState;
use crate::pages::import::ImportSection;

fn key_label(k: &KeyState) -> (String, &'static str) {
    match k {
        KeyState::Keychain { last4 } => (format!("••••{last4} (keychain)"), "ok"),
        KeyState::Environment { last4 } => (format!("••••{last4} (environment)"), "ok"),
        KeyState::Missing => ("no key".to_owned(), "warn"),
        KeyState::NotNeeded => ("no key needed (local)".to_owned(), "dim"),
        KeyState::Unknown { .. } => ("no keychain on this machine".to_owned(), "warn"),
    }
}

#[component]
fn ProviderRow(provider: ProviderSummary, enabled: bool, reload: Callback<()>) -> impl IntoView {
    let key = RwSignal::new(provider.key.clone());
    let url = RwSignal::new(provider.base_url.clone());
    let saved_url = StoredValue::new(provider.base_url.clone());
    let config_error = RwSignal::new(None::<String>);
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
    let remove = move |()| {
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
    let toggle = move |ev: web_sys::Event| {
        let on = event_target_checked(&ev);
        busy.set(true);
        spawn_local(async move {
            match ipc::set_provider_enabled(&id.get_value(), on).await {
                Ok(()) => {
                    // The page may be gone by now: nothing to reload then.
                    let _ = reload.try_run(());
                }
                Err(e) => config_error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let save_url = move |_| {
        let value = url.get_untracked().trim().to_owned();
        busy.set(true);
        spawn_local(async move {
            match ipc::set_provider_base_url(&id.get_value(), &value).await {
                Ok(()) => {
                    // The page may be gone by now: nothing to reload then.
                    let _ = reload.try_run(());
                }
                Err(e) => config_error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let url_unchanged = move || url.get().trim() == saved_url.get_value();
    let has_stored = move || matches!(key.get(), KeyState::Keychain { .. });
    let key_url = provider.key_url.clone();
    let key_part = move || {
        view! {
            <div class="provider-key">
                <span class=move || format!("key-state {}", key_label(&key.get()).1)
                    title=move || match key.get() {
                        KeyState::Unknown { reason } => reason,
                        _ => String::new(),
                    }>
                    {move || key_label(&key.get()).0}
                </span>
                <div class="key-edit">
                    <input type="password" class="key-input" autocomplete="off" spellcheck="false"
                        placeholder=move || if has_stored() { "Replace key…" } else { "Paste API key…" }
                        prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev)) />
                    <button class="small key-save" on:click=save disabled=move || busy.get() || draft.get().trim().is_empty()>"Save"</button>
                    <Show when=has_stored>
                        <ConfirmButton label="Remove" class="small key-remove"
                            question=format!("Remove the key of {} from the keychain?", id.get_value())
                            on_confirm=Callback::new(remove) disabled=Signal::derive(move || busy.get()) />
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
        }
    };
    view! {
        <div class="provider-row" class:disabled=!enabled data-provider=provider.id.clone()>
            <div class="provider-main">
                <div class="provider-name">
                    <strong>{provider.name.clone()}</strong>
                    <span class="dim">{format!(" {} · {}", provider.id, provider.kind)}</span>
                </div>
                <label class="provider-toggle" title="Off: its models are not offered and it is never called">
                    <input type="checkbox" class="provider-enabled" prop:checked=enabled
                        disabled=move || busy.get() on:change=toggle />
                    {if enabled { " Enabled" } else { " Disabled" }}
                </label>
                <div class="base-url-edit">
                    <input class="base-url-input" type="text" spellcheck="false" aria-label="Base URL"
                        prop:value=move || url.get() on:input=move |ev| { url.set(event_target_value(&ev)); config_error.set(None); } />
                    <button class="small base-url-save" on:click=save_url disabled=move || busy.get() || url_unchanged()>"Save"</button>
                </div>
                {move || config_error.get().map(|e| view! { <div class="check err config-error">{e}</div> })}
            </div>
            {enabled.then(key_part)}
        </div>
    }
}

#[component]
fn AddProvider(reload: Callback<()>) -> impl IntoView {
    let id = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let add = move |_| {
        let request = NewProvider {
            id: id.get_untracked().trim().to_owned(),
            base_url: url.get_untracked().trim().to_owned(),
        };
        busy.set(true);
        spawn_local(async move {
            match ipc::add_provider(&request).await {
                Ok(()) => {
                    id.set(String::new());
                    url.set(String::new());
                    error.set(None);
                    let _ = reload.try_run(());
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let empty = move || id.get().trim().is_empty() || url.get().trim().is_empty();
    view! {
        <div class="add-provider" id="add-provider">
            <span class="dim">"Add an OpenAI-compatible server:"</span>
            <input id="new-provider-id" type="text" spellcheck="false" placeholder="id (e.g. lab)"
                prop:value=move || id.get() on:input=move |ev| id.set(event_target_value(&ev)) />
            <input id="new-provider-url" type="text" spellcheck="false" placeholder="base URL (e.g. http://10.0.0.5:8000/v1)"
                prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
            <button class="small" id="add-provider-save" on:click=add disabled=move || busy.get() || empty()>"Add"</button>
            {move || error.get().map(|e| view! { <div class="check err config-error" id="add-provider-error">{e}</div> })}
        </div>
    }
}

fn ms_text(ms: Option<u64>) -> String {
    ms.map(|m| m.to_string()).unwrap_or_default()
}

/// A timeout field: empty is the default; otherwise whole milliseconds.
fn parse_ms(label: &str, text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("{label}: a whole number of milliseconds, or empty for the default"))
}

/// The routes editor: `[routes.<name>]` tables, listed, created, changed
/// (name, strategy, ordered targets, timeouts) and deleted.
#[component]
fn RoutesEditor(catalog: RwSignal<Option<CatalogView>>, reload: Callback<()>) -> impl IntoView {
    let editing = RwSignal::new(false);
    let previous = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let strategy = RwSignal::new("ordered".to_owned());
    let targets = RwSignal::new(Vec::<String>::new());
    let first_token = RwSignal::new(String::new());
    let idle = RwSignal::new(String::new());
    let total = RwSignal::new(String::new());
    let typed = RwSignal::new(String::new());
    let picked = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let open = move |r: Option<RouteSummary>| {
        let r = r.unwrap_or_else(|| RouteSummary {
            name: String::new(),
            strategy: "ordered".into(),
            targets: Vec::new(),
            first_token_timeout_ms: None,
            idle_timeout_ms: None,
            total_timeout_ms: None,
        });
        previous.set((!r.name.is_empty()).then(|| r.name.clone()));
        name.set(r.name);
        strategy.set(r.strategy);
        targets.set(r.targets);
        first_token.set(ms_text(r.first_token_timeout_ms));
        idle.set(ms_text(r.idle_timeout_ms));
        total.set(ms_text(r.total_timeout_ms));
        typed.set(String::new());
        error.set(None);
        editing.set(true);
    };
    let add_target = move |t: String| {
        let t = t.trim().to_owned();
        if t.is_empty() {
            return;
        }
        if t.starts_with('@') || !t.contains(':') {
            error.set(Some(format!(
                "{t:?} is not provider:model (a route cannot contain a route)"
            )));
            return;
        }
        error.set(None);
        targets.update(|v| v.push(t));
    };
    // A model chosen in the picker is appended, and the picker cleared.
    Effect::new(move |_| {
        let t = picked.get();
        if !t.is_empty() {
            add_target(t);
            picked.set(String::new());
        }
    });
    let save = move |_| {
        let spec = (|| {
            Ok::<_, String>(RouteSpec {
                name: name.get_untracked().trim().to_owned(),
                strategy: strategy.get_untracked(),
                targets: targets.get_untracked(),
                first_token_timeout_ms: parse_ms(
                    "first-token timeout",
                    &first_token.get_untracked(),
                )?,
                idle_timeout_ms: parse_ms("idle timeout", &idle.get_untracked())?,
                total_timeout_ms: parse_ms("total timeout", &total.get_untracked())?,
            })
        })();
        let route = match spec {
            Ok(r) => r,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        let request = SaveRoute {
            previous: previous.get_untracked(),
            route,
        };
        busy.set(true);
        spawn_local(async move {
            match ipc::save_route(&request).await {
                Ok(()) => {
                    editing.set(false);
                    error.set(None);
                    let _ = reload.try_run(());
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let delete = move |route: String| {
        spawn_local(async move {
            match ipc::delete_route(&route).await {
                Ok(()) => {
                    // The page may be gone by now: nothing to reload then.
                    let _ = reload.try_run(());
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let routes = move || catalog.get().map(|c| c.routes).unwrap_or_default();
    let target_rows = move || {
        let list = targets.get();
        let n = list.len();
        list.into_iter()
            .enumerate()
            .map(|(i, t)| {
                let first = i == 0;
                let last = i + 1 == n;
                view! {
                    <li class="route-target" data-index=i.to_string()>
                        <span class="route-target-label">{format!("{}. {t}", i + 1)}</span>
                        <button class="icon target-up" title="Move up" disabled=first
                            on:click=move |_| targets.update(|v| v.swap(i - 1, i))>"↑"</button>
                        <button class="icon target-down" title="Move down" disabled=last
                            on:click=move |_| targets.update(|v| v.swap(i, i + 1))>"↓"</button>
                        <button class="icon target-remove" title="Remove"
                            on:click=move |_| targets.update(|v| { v.remove(i); })>"✕"</button>
                    </li>
                }
            })
            .collect_view()
    };
    let field = move |id: &'static str, label: &'static str, sig: RwSignal<String>| {
        view! {
            <label class="route-field">{label}
                <input id=id type="text" inputmode="numeric" placeholder="default"
                    prop:value=move || sig.get() on:input=move |ev| sig.set(event_target_value(&ev)) />
            </label>
        }
    };
    view! {
        <div class="routes-editor" id="routes-editor">
            <ul class="route-list" id="route-list">
                {move || {
                    let list = routes();
                    if list.is_empty() {
                        return view! { <li class="dim">"No routes yet. A route is a named list of targets: a fallback chain, or the cheapest / fastest of them."</li> }.into_any();
                    }
                    list.into_iter().map(|r| {
                        let (n1, n2) = (r.name.clone(), r.name.clone());
                        let summary = format!("{} · {}", r.strategy, r.targets.join(" → "));
                        let edit_with = r.clone();
                        view! {
                            <li class="route-row" data-route=r.name.clone()>
                                <strong class="route-name">{format!("@{n1}")}</strong>
                                <span class="route-summary dim">{summary}</span>
                                <button class="small route-edit" on:click=move |_| open(Some(edit_with.clone()))>"Edit"</button>
                                <ConfirmButton label="Delete" class="small route-delete"
                                    question=format!("Delete the route @{n2}?")
                                    on_confirm=Callback::new(move |()| delete(n2.clone())) />
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ul>
            <Show when=move || !editing.get() fallback=move || view! {
                <div class="route-form" id="route-form">
                    <div class="route-form-row">
                        <label class="route-field">"Name"
                            <input id="route-name" type="text" spellcheck="false" placeholder="e.g. resilient"
                                prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                        </label>
                        <label class="route-field">"Strategy"
                            <select id="route-strategy" prop:value=move || strategy.get()
                                on:change=move |ev| strategy.set(event_target_value(&ev))>
                                <option value="ordered">"ordered (fallback chain)"</option>
                                <option value="cheapest">"cheapest"</option>
                                <option value="fastest">"fastest"</option>
                                <option value="balanced">"balanced"</option>
                            </select>
                        </label>
                    </div>
                    <div class="route-field">"Targets, in order"
                        <ol class="route-targets" id="route-targets">{target_rows}</ol>
                        <div class="route-add">
                            <ModelPicker target=picked catalog=catalog />
                            <input id="route-target-input" type="text" spellcheck="false" placeholder="or type provider:model"
                                prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev))
                                on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { add_target(typed.get_untracked()); typed.set(String::new()); } />
                            <button class="small" id="route-target-add" on:click=move |_| { add_target(typed.get_untracked()); typed.set(String::new()); }>"Add"</button>
                        </div>
                    </div>
                    <div class="route-form-row">
                        {field("route-first-token", "First-token timeout (ms)", first_token)}
                        {field("route-idle", "Idle timeout (ms)", idle)}
                        {field("route-total", "Total timeout (ms)", total)}
                    </div>
                    {move || error.get().map(|e| view! { <div class="check err config-error" id="route-error">{e}</div> })}
                    <div class="route-form-row">
                        <button id="route-save" on:click=save disabled=move || busy.get()>"Save route"</button>
                        <button class="small" id="route-cancel" on:click=move |_| editing.set(false)>"Cancel"</button>
                    </div>
                </div>
            }>
                <button class="small" id="new-route" on:click=move |_| open(None)>"New route"</button>
                {move || error.get().map(|e| view! { <div class="check err config-error">{e}</div> })}
            </Show>
        </div>
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let catalog = LocalResource::new(ipc::list_catalog);
    // The latest catalog for the routes editor's picker, and for the
    // compare view's pickers, which must not offer what was just turned off.
    let shared = RwSignal::new(None::<CatalogView>);
    let compare = use_context::<CompareState>();
    Effect::new(move |_| {
        if let Some(Ok(view)) = catalog.get() {
            if let Some(c) = compare {
                c.catalog.set(Some(view.clone()));
            }
            shared.set(Some(view));
        }
    });
    let reload = Callback::new(move |()| catalog.refetch());
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
            Ok(CatalogView { providers, disabled, config_problems, .. }) => view! {
                {config_problems.into_iter().map(|p| view! { <div class="check err config-problem">{p}</div> }).collect_view()}
                <div class="provider-list" id="provider-list">
                    {providers.into_iter().map(|p| view! { <ProviderRow provider=p enabled=true reload=reload /> }).collect_view()}
                    {disabled.into_iter().map(|p| view! { <ProviderRow provider=p enabled=false reload=reload /> }).collect_view()}
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
            <AddProvider reload=reload />
            <Transition fallback=|| view! { <p class="dim">"Loading providers…"</p> }>{providers}</Transition>
            <h2 class="section-title" id="routes-title">"Routes"</h2>
            <p class="dim small-note">"Saved to [routes.<name>] in config.toml; pick one in a pane as @name."</p>
            <RoutesEditor catalog=shared reload=reload />
            <LocalApiSettings />
            <h2 class="section-title" id="import-title">"Import"</h2>
            <ImportSection />
            <AboutPanel />
        </section>
    }
}
