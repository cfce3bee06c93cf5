//! The About panel (Settings → About): the version and the build it came
//! from (the same line `switchboard-cli --version` prints), the data
//! directory, and where API keys are kept. It asks the running engine
//! (`app_info`), so it shows what this process really uses, not defaults.

use leptos::prelude::*;
use switchboard_protocol::{AppInfo, KeychainStatus};

use crate::ipc;

// Its own layout, inline, so the panel stays one self-contained file.
const FACTS: &str =
    "display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0;";
const TERM: &str = "color: var(--text-dim);";
const FACT: &str = "margin: 0; overflow-wrap: anywhere;";

fn facts(info: AppInfo) -> impl IntoView {
    // The detail (a D-Bus error) is for the tooltip; the line says what to do.
    let (keychain, why) = match &info.keychain {
        KeychainStatus::Available => ("answering".to_owned(), String::new()),
        KeychainStatus::Unavailable { reason } => (
            "not reachable: start a Secret Service (e.g. gnome-keyring), or give a key for \
             one run as SWITCHBOARD_KEY_<ID>"
                .to_owned(),
            reason.clone(),
        ),
    };
    let keys = format!(
        "Kept in the {}, under the service \"{}\", one entry per provider. Switchboard never \
         writes them to the data directory, config, history, logs or exports; a key leaves the \
         keychain only in requests to its own provider.",
        info.keychain_backend, info.key_service
    );
    view! {
        <dl class="about-facts" style=FACTS>
            <dt style=TERM>"Version"</dt>
            <dd style=FACT id="about-version">{info.version_line}</dd>
            <dt style=TERM>"Data directory"</dt>
            <dd style=FACT id="about-data-dir">{info.data_dir}</dd>
            <dt style=TERM>"API keys"</dt>
            <dd style=FACT id="about-keys">{keys}</dd>
            <dt style=TERM>"Keychain"</dt>
            <dd style=FACT id="about-keychain" title=why>{keychain}</dd>
        </dl>
    }
}

/// The About section, placed at the end of the settings page.
#[component]
pub fn AboutPanel() -> impl IntoView {
    let info = LocalResource::new(ipc::app_info);
    view! {
        <h2 class="section-title" id="about-title">"About Switchboard"</h2>
        <div class="about" id="about">
            <Suspense fallback=|| view! { <p class="dim">"Asking the engine…"</p> }>
                {move || {
                    info.get().map(|res| match res {
                        Ok(info) => facts(info).into_any(),
                        Err(e) => view! { <p class="check err">{e.message}</p> }.into_any(),
                    })
                }}
            </Suspense>
        </div>
    }
}
