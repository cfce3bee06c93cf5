use leptos::prelude::*;
use switchboard_protocol::KeychainStatus;

use crate::app::Theme;
use crate::ipc;

#[component]
pub fn StatusBar() -> impl IntoView {
    let theme = use_context::<RwSignal<Theme>>();
    let info = LocalResource::new(ipc::app_info);

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
            <button class="status-button" id="theme-toggle" on:click=toggle>
                {theme_label}
            </button>
        </footer>
    }
}
