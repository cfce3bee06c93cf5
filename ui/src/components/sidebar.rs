use leptos::prelude::*;

#[component]
pub fn Sidebar() -> impl IntoView {
    view! {
        <nav class="sidebar" id="sidebar" aria-label="Navigation">
            <div class="brand">
                <img class="brand-mark" src="32x32.png" alt="" width="22" height="22" />
                <span class="brand-name">"Switchboard"</span>
            </div>
            <ul class="nav">
                <li>
                    <a class="nav-item active" aria-current="page" href="#main">
                        "Echo round trip"
                    </a>
                </li>
            </ul>
            <section class="sidebar-section">
                <h2 class="sidebar-heading">"Conversations"</h2>
                <p class="sidebar-empty" id="conversations-empty">"No conversations yet."</p>
            </section>
        </nav>
    }
}
