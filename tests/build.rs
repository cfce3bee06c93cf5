//! Tauri's build step for `switchboard-floor` (src/bin/switchboard-floor.rs),
//! the bare window the memory benchmark measures beside the app; its
//! configuration is floor/tauri.conf.json. It allows no command.

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tauri_build::try_build(tauri_build::Attributes::new().config_path("floor/tauri.conf.json"))?;
    Ok(())
}
