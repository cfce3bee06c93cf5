//! Switchboard's UI, rendered client-side by Leptos and talking to the Rust
//! backend only through the typed wrappers in [`ipc`].

mod app;
mod components;
mod ipc;
mod pages;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
