//! One module per page of the main area.

mod compare;
mod settings;
mod spend;

pub use compare::{ComparePage, CompareState};
pub use settings::SettingsPage;
pub use spend::SpendPage;
