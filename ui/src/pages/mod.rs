//! One module per page of the main area.

mod compare;
mod import;
mod leaderboard;
mod settings;
mod spend;

pub use compare::{ComparePage, CompareState};
pub use import::ImportState;
pub use leaderboard::LeaderboardPage;
pub use settings::SettingsPage;
pub use spend::SpendPage;
