//! Pieces of the shell that every page shares.

mod sidebar;
mod status_bar;

pub use sidebar::Sidebar;
pub use status_bar::StatusBar;
