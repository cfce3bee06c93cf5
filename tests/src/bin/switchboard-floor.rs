//! `switchboard-floor`: the cheapest window a Tauri 2 app can open here, the
//! floor the memory benchmark (benches/compare_ui.rs) prints beside the app.
//! It has the app's tauri features and configuration (floor/tauri.conf.json:
//! the same security settings and global API, checked by tests/floor.rs;
//! the app's own window, read from its tauri.conf.json), and
//! applies the app's own web view settings and no-GPU environment handling
//! (src-tauri/src/webkit.rs, compiled in as it is), but no command, no
//! plugin, no engine and no runtime of its own.
//!
//! Its page is an empty document, or with `SWITCHBOARD_FLOOR_PAGE=ui` the
//! app's built UI (ui/dist, embedded and served as the app serves it), whose
//! every call to the backend then fails: the page's own cost (wasm, DOM,
//! JavaScript) without the app's.
//!
//! With `SWITCHBOARD_FLOOR_PAGE=copy` its page is the file
//! `SWITCHBOARD_FLOOR_FILE`, served as is: the benchmark's static copy of
//! the app's page (its elements and styles, no code).
//!
//! With `SWITCHBOARD_FLOOR_PAGE=stream` it is the render rate's floor: six
//! plain-text panes that this process streams into the way the app does
//! (see [`stream`]), the best a page can do in this window at that pace.

use std::process::ExitCode;

use tauri::http::{HeaderValue, Response, header::CONTENT_TYPE};
use tauri::utils::config::WindowConfig;
use tauri::webview::PageLoadEvent;
use tauri::{WebviewUrl, WebviewWindowBuilder};

/// The app's configuration, whose window the floor opens.
const APP_CONFIG: &str = include_str!("../../../tauri.conf.json");

/// The app's window (size, limits, placement) as its configuration has it.
fn app_window() -> Result<WindowConfig, Box<dyn std::error::Error>> {
    let config: serde_json::Value = serde_json::from_str(APP_CONFIG)?;
    let window = config
        .pointer("/app/windows/0")
        .cloned()
        .ok_or("the app's tauri.conf.json has no window")?;
    Ok(serde_json::from_value(window)?)
}

#[cfg(target_os = "linux")]
#[path = "../../../src-tauri/src/webkit.rs"]
mod webkit;

#[path = "switchboard-floor/stream.rs"]
mod stream;
use stream::STREAM_PAGE;

/// The empty page, served on its own scheme as the app's are on `tauri:`.
const EMPTY_PAGE: &str =
    "<!doctype html><html><head><title>floor</title></head><body id=\"floor\"></body></html>";

fn html(page: &str) -> Response<Vec<u8>> {
    let mut response = Response::new(page.as_bytes().to_vec());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(target_os = "linux")]
    webkit::before_gtk();
    let page = std::env::var("SWITCHBOARD_FLOOR_PAGE").unwrap_or_default();
    let url = if page == "ui" {
        WebviewUrl::App("index.html".into())
    } else {
        WebviewUrl::CustomProtocol("floor://localhost/".parse()?)
    };
    let streams = page == "stream";
    let document = match page.as_str() {
        "stream" => STREAM_PAGE.to_owned(),
        "copy" => std::fs::read_to_string(
            std::env::var_os("SWITCHBOARD_FLOOR_FILE")
                .ok_or("SWITCHBOARD_FLOOR_FILE is not set")?,
        )?,
        _ => EMPTY_PAGE.to_owned(),
    };
    tauri::Builder::default()
        .register_uri_scheme_protocol("floor", move |_, _| html(&document))
        .setup(move |app| {
            let mut config = app_window()?;
            config.url = url.clone();
            config.title = "Switchboard floor".into();
            let mut builder = WebviewWindowBuilder::from_config(app, &config)?;
            if streams {
                builder = builder.on_page_load(|webview, load| {
                    if load.event() == PageLoadEvent::Finished {
                        stream::start(webview);
                    }
                });
            }
            let window = builder.build()?;
            #[cfg(target_os = "linux")]
            window.with_webview(webkit::tune)?;
            #[cfg(not(target_os = "linux"))]
            let _ = window;
            Ok(())
        })
        .run(tauri::generate_context!("floor/tauri.conf.json"))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the one place that reports a failed start
            {
                eprintln!("switchboard-floor: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
