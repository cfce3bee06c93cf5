//! Pieces of the shell that every page shares.

mod model_picker;
mod sidebar;
mod status_bar;

pub use model_picker::ModelPicker;
pub use sidebar::Sidebar;
pub use status_bar::StatusBar;
