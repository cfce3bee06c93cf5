// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    match switchboard_app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the one place that reports a failed start
            {
                eprintln!("switchboard: {e}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
