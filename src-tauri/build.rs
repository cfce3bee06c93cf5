//! Tauri's build step, with the configuration at the repository root and an
//! access-control manifest that lists the app's own commands, so the
//! capability in `capabilities/` can allow exactly those and nothing else.

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "app_info",
        "echo_stream",
        "list_catalog",
        "ask",
        "stop_stream",
        "set_key",
        "remove_key",
        "test_provider",
        "detect_local",
        "start_round",
        "list_conversations",
        "search_history",
        "open_conversation",
        "rename_conversation",
        "delete_conversation",
        "export_conversation",
    ]);
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(manifest);
    tauri_build::try_build(attributes)?;
    Ok(())
}
