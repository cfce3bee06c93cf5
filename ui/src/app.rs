//! The window's shell: sidebar, main area and status bar, and the theme.

use leptos::prelude::*;

use crate::components::{Sidebar, StatusBar};
use crate::pages::{ComparePage, LeaderboardPage, SettingsPage, SpendPage};

/// The page shown in the main area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Side-by-side chat.
    Compare,
    /// Providers, keys, local servers.
    Settings,
    /// Spend, budgets, ledger export.
    Spend,
    /// Ratings from the user's blind votes.
    Leaderboard,
}

/// Light or dark, remembered in `localStorage` and applied as
/// `data-theme` on the root element so the CSS variables switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Dark,
    Light,
}

impl Theme {
    const KEY: &'static str = "switchboard.theme";

    fn name(self) -> &'static str {
        match self {
            Theme::Dark => "dark",
            Theme::Light => "light",
        }
    }

    pub fn toggled(self) -> Self {
        match self {
            Theme::Dark => Theme::Light,
            Theme::Light => Theme::Dark,
        }
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn load() -> Self {
        match Self::storage().and_then(|s| s.get_item(Self::KEY).ok()?) {
            Some(v) if v == "light" => Theme::Light,
            _ => Theme::Dark,
        }
    }

    fn apply(self) {
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("data-theme", self.name());
        }
        if let Some(s) = Self::storage() {
            let _ = s.set_item(Self::KEY, self.name());
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    let theme = RwSignal::new(Theme::load());
    Effect::new(move |_| theme.get().apply());
    provide_context(theme);
    let page = RwSignal::new(Page::Compare);
    provide_context(page);
    // The compare view's state outlives the page, so switching to settings
    // and back keeps the conversation, and the sidebar can open one into it.
    // It is a few signals; the conversation's panes, rounds and answers in
    // them are reference-counted and go when they are replaced.
    provide_context(crate::pages::CompareState::new());
    // A page loaded afresh (a reload) shows no conversation yet: files held
    // in memory for an incognito one shown before go.
    leptos::task::spawn_local(async {
        let _ = crate::ipc::release_attachments(&[]).await;
    });
    // An import goes on, and its progress stays, while other pages show.
    provide_context(crate::pages::ImportState::new());

    view! {
        <div class="shell">
            <Sidebar />
            <main class="main" id="main" class:main-compare=move || page.get() == Page::Compare>
                {move || match page.get() {
                    Page::Compare => view! { <ComparePage /> }.into_any(),
                    Page::Settings => view! { <SettingsPage /> }.into_any(),
                    Page::Spend => view! { <SpendPage /> }.into_any(),
                    Page::Leaderboard => view! { <LeaderboardPage /> }.into_any(),
                }}
            </main>
            <StatusBar />
        </div>
    }
}
