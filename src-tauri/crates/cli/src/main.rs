//! `switchboard-cli`: Switchboard's engine from the terminal. It shares the
//! data directory (`SWITCHBOARD_HOME`) and the keychain with the app.
//!
//! Exit codes: 0 when every target answered, 1 when any failed, 2 for usage
//! or configuration errors; `ask` stopped by Ctrl-C (SIGINT) exits 130, by
//! SIGTERM 143, after saving and billing what arrived. `serve` runs the
//! Local API until Ctrl-C or SIGTERM, then exits 0 once its requests have
//! settled (2 when it cannot start).

mod ask;
mod budget;
mod history;
mod keys;
mod leaderboard;
mod models;
mod output;
mod routes;
mod serve;
mod spend;
mod tokens;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chat with many LLMs from the terminal.
#[derive(Debug, Parser)]
#[command(name = "switchboard-cli", version = switchboard_engine::VERSION_LINE, about)]
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
    /// Explain how each route would order its targets right now, and why.
    Routes(routes::RoutesArgs),
    /// Provider keys in the OS keychain: set (from stdin), list, rm, test.
    Keys(keys::KeysArgs),
    /// Past conversations: list, search, export, import.
    History(history::HistoryArgs),
    /// What was spent, grouped by day, week, month, provider, model, route or tag.
    Spend(spend::SpendArgs),
    /// Spend budgets in config.toml: set, list, rm.
    Budget(budget::BudgetArgs),
    /// The Local API: an OpenAI- and Anthropic-compatible endpoint for other tools.
    Serve(serve::ServeArgs),
    /// Client tokens of the Local API: create (shown once), list, revoke.
    Tokens(tokens::TokensArgs),
    /// Which model wins your blind votes: ratings with intervals, cost and speed.
    Leaderboard(leaderboard::LeaderboardArgs),
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
        Command::Ask(args) => match ask::run(args).await {
            Ok(ask::Ended::Signalled(code)) => return ExitCode::from(code),
            Ok(ask::Ended::Ran(all_ok)) => Ok(all_ok),
            Err(e) => Err(e),
        },
        Command::Models(args) => models::run(args).await,
        Command::Routes(args) => routes::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::History(args) => history::run(args),
        Command::Spend(args) => spend::run(args),
        Command::Budget(args) => budget::run(args),
        Command::Serve(args) => serve::run(args).await,
        Command::Tokens(args) => tokens::run(args),
        Command::Leaderboard(args) => leaderboard::run(args),
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
