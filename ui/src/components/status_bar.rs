use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{KeychainStatus, SpendStatus, format_usd, usd_to_nanos};

use crate::app::Theme;
use crate::ipc;

#[component]
pub fn StatusBar() -> impl IntoView {
    let theme = use_context::<RwSignal<Theme>>();
    let info = LocalResource::new(ipc::app_info);
    // Today's spend and the tightest budget: read again whenever an answer
    // of this window ends, and every 15 s for what other processes (the CLI)
    // add to the ledger.
    let spend = RwSignal::new(None::<SpendStatus>);
    let refresh = move || {
        spawn_local(async move {
            if let Ok(s) = ipc::spend_status().await {
                spend.set(Some(s));
            }
        })
    };
    let answers = use_context::<crate::pages::CompareState>().map(|c| c.spend_changed);
    Effect::new(move |_| {
        if let Some(a) = answers {
            a.track();
        }
        refresh();
    });
    set_interval(refresh, std::time::Duration::from_secs(15));
    let spend_view = move || {
        spend.get().map(|s| {
            let money = |usd: &str| usd_to_nanos(usd).map_or_else(|| usd.to_owned(), format_usd);
            let today = format!("Today {}", money(&s.today_usd));
            let budget = s.tightest.map(|b| {
                let class = match b.state.as_str() {
                    "exceeded" => "status-item err",
                    "warning" => "status-item warn",
                    _ => "status-item",
                };
                let title = format!(
                    "{} budget \"{}\" ({}): {} of {} spent{}",
                    b.period,
                    b.name,
                    b.scope,
                    money(&b.spent_usd),
                    money(&b.limit_usd),
                    if b.hard { ", hard stop" } else { ", warn only" }
                );
                view! {
                    <span class=class id="status-budget" title=title>
                        {format!("{}: {} left", b.name, money(&b.remaining_usd))}
                    </span>
                }
            });
            view! {
                <span class="status-item" id="status-spend" title="Spent today (UTC)">{today}</span>
                {budget}
            }
        })
    };

    let toggle = move |_| {
        if let Some(t) = theme {
            t.update(|t| *t = t.toggled());
        }
    };
    let theme_label = move || match theme.map(|t| t.get()) {
        Some(Theme::Light) => "Dark theme",
        _ => "Light theme",
    };

    view! {
        <footer class="status-bar" id="status-bar">
            <Suspense fallback=|| view! { <span class="status-item">"Connecting to the engine…"</span> }>
                {move || {
                    info.get().map(|res| match res {
                        Ok(info) => {
                            let (kc_class, kc_text, kc_title) = match &info.keychain {
                                KeychainStatus::Available => {
                                    ("status-item ok", "Keychain ready".to_owned(), String::new())
                                }
                                KeychainStatus::Unavailable { reason } => {
                                    ("status-item warn", "No keychain".to_owned(), reason.clone())
                                }
                            };
                            view! {
                                <span class="status-item ok" id="status-engine">
                                    {format!("Engine {}", info.version)}
                                </span>
                                <span class=kc_class id="status-keychain" title=kc_title>
                                    {kc_text}
                                </span>
                                <span class="status-item dim status-path" title="Data directory">
                                    <span id="status-data-dir">{info.data_dir}</span>
                                </span>
                            }
                                .into_any()
                        }
                        Err(e) => {
                            view! {
                                <span class="status-item err" id="status-engine">
                                    {format!("Engine unreachable: {}", e.message)}
                                </span>
                            }
                                .into_any()
                        }
                    })
                }}
            </Suspense>
            <span class="status-spacer"></span>
            {spend_view}
            <button class="status-button" id="theme-toggle" on:click=toggle>
                {theme_label}
            </button>
        </footer>
    }
}
