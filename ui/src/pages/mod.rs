//! One module per page of the main area.

mod compare;
mod echo;
mod settings;

pub use compare::{ComparePage, CompareState};
pub use echo::EchoPage;
pub use settings::SettingsPage;
