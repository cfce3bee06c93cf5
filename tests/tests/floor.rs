//! The memory benchmark's floor (`switchboard-floor`, src/bin) stands for
//! the app with nothing of its own: its configuration (floor/tauri.conf.json)
//! repeats the app's security settings, since its capabilities must not be
//! the app's, and it opens the app's own window from the app's
//! tauri.conf.json. A change to the app's settings must reach the floor.

#![allow(clippy::unwrap_used, reason = "test code")]

use serde_json::Value;
use tauri::utils::config::WindowConfig;

fn config(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_floor_has_the_apps_security_settings_and_window() {
    let app = config(include_str!("../../tauri.conf.json"));
    let floor = config(include_str!("../floor/tauri.conf.json"));
    for setting in [
        "/app/withGlobalTauri",
        "/app/security/csp",
        "/app/security/freezePrototype",
    ] {
        assert!(app.pointer(setting).is_some(), "{setting}");
        assert_eq!(
            app.pointer(setting),
            floor.pointer(setting),
            "floor/tauri.conf.json differs from the app's at {setting}"
        );
    }
    // The window the floor opens: the app's first, which the floor's
    // capability names.
    let window: WindowConfig =
        serde_json::from_value(app.pointer("/app/windows/0").unwrap().clone()).unwrap();
    assert_eq!(window.label, "main");
    assert_eq!(
        floor.pointer("/app/security/capabilities/0/windows"),
        Some(&serde_json::json!(["main"]))
    );
}
