//! One module per page of the main area.

mod echo;

pub use echo::EchoPage;
