//! `switchboard-cli`: Switchboard's engine from the terminal. It shares the
//! data directory (`SWITCHBOARD_HOME`) and the keychain with the app.
//!
//! Exit codes: 0 when every target answered, 1 when any failed, 2 for usage
//! or configuration errors.

mod ask;
mod models;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chat with many LLMs from the terminal.
#[derive(Debug, Parser)]
#[command(name = "switchboard-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one prompt to every target in parallel.
    Ask(ask::AskArgs),
    /// List a provider's models with context windows and prices.
    Models(models::ModelsArgs),
}

/// A failure that is the user's to fix (bad flags, bad config): exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match cli.command {
        Command::Ask(args) => ask::run(args).await,
        Command::Models(args) => models::run(args).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(UsageError(message)) => {
            output::error_line(&message);
            ExitCode::from(2)
        }
    }
}
