//! The Switchboard desktop app: a thin Tauri shell. Each command decodes its
//! arguments, calls `switchboard-engine`, and maps the result to the types of
//! `switchboard-protocol`; nothing here is worth testing without a window.

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_engine::{DataDir, KeyError, KeyStore, echo};
use switchboard_protocol::{
    AppInfo, EchoEvent, EchoRequest, EchoSummary, IpcError, IpcErrorKind, KeychainStatus, Sequenced,
};
use tauri::ipc::Channel;

/// What every command can reach.
#[derive(Debug)]
struct AppState {
    data_dir: DataDir,
    keys: KeyStore,
}

fn internal(message: impl Into<String>) -> IpcError {
    IpcError {
        kind: IpcErrorKind::Internal,
        message: message.into(),
    }
}

#[tauri::command]
async fn app_info(state: tauri::State<'_, AppState>) -> Result<AppInfo, IpcError> {
    let keys = state.keys.clone();
    // The keychain may sit behind a D-Bus round trip: keep it off the IPC thread.
    let probe = tokio::task::spawn_blocking(move || keys.probe())
        .await
        .map_err(|e| internal(format!("keychain probe failed: {e}")))?;
    let keychain = match probe {
        Ok(()) => KeychainStatus::Available,
        Err(e @ (KeyError::Unavailable { .. } | KeyError::Platform { .. })) => {
            KeychainStatus::Unavailable {
                reason: e.to_string(),
            }
        }
        Err(e) => return Err(internal(e.to_string())),
    };
    Ok(AppInfo {
        version: switchboard_engine::VERSION.to_owned(),
        data_dir: state.data_dir.path().display().to_string(),
        keychain,
    })
}

#[tauri::command]
async fn echo_stream(
    request: EchoRequest,
    on_event: Channel<Sequenced<EchoEvent>>,
) -> Result<EchoSummary, IpcError> {
    let seq = AtomicU64::new(0);
    let sink = |body: EchoEvent| {
        let msg = Sequenced {
            seq: seq.fetch_add(1, Ordering::Relaxed),
            body,
        };
        on_event.send(msg).is_ok()
    };
    echo::run(&request, sink).await.map_err(|e| match e {
        echo::EchoError::Invalid(message) => IpcError {
            kind: IpcErrorKind::InvalidInput,
            message,
        },
        closed @ echo::EchoError::Closed { .. } => IpcError {
            kind: IpcErrorKind::ChannelClosed,
            message: closed.to_string(),
        },
    })
}

/// Start the app and block until its window closes.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = DataDir::resolve()?;
    tauri::Builder::default()
        .manage(AppState {
            data_dir,
            keys: KeyStore::new(),
        })
        .invoke_handler(tauri::generate_handler![app_info, echo_stream])
        .run(tauri::generate_context!("../tauri.conf.json"))?;
    Ok(())
}
