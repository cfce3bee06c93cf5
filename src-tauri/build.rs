//! Tauri's build step, with the configuration at the repository root and an
//! access-control manifest that lists the app's own commands, so the
//! capability in `capabilities/` can allow exactly those and nothing else.

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "app_info",
        "list_catalog",
        "attach_streams",
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
        "save_panes",
        "rename_conversation",
        "delete_conversation",
        "export_conversation",
        "set_provider_enabled",
        "set_provider_base_url",
        "add_provider",
        "save_route",
        "delete_route",
        "set_pinned",
        "spend_overview",
        "spend_status",
        "save_budget",
        "remove_budget",
        "check_budgets",
        "export_spend",
        "set_tags",
        "local_api_status",
        "set_local_api",
        "create_client_token",
        "revoke_client_token",
        "store_attachment",
        "attachment_data",
        "discard_attachment",
        "hold_attachments",
        "release_attachments",
        "check_attachments",
        "import_history",
        "choose_import_file",
        "record_vote",
        "judge_round",
        "leaderboard",
    ]);
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(manifest);
    tauri_build::try_build(attributes)?;
    Ok(())
}
