//! Pieces of the shell that every page shares.

mod about;
mod confirm;
mod local_api;
mod model_picker;
mod sidebar;
mod status_bar;

pub use about::AboutPanel;
pub use confirm::ConfirmButton;
pub use local_api::LocalApiSettings;
pub use model_picker::{ModelPicker, target_parts};
pub use sidebar::Sidebar;
pub use status_bar::StatusBar;
