//! The sidebar: navigation, the conversation history (pinned first, a page
//! at a time), full-text search with highlighted snippets that open the
//! conversation at the matching message, and pin / rename / delete (with
//! undo) / export for each conversation. The list is virtualized: rows have
//! a fixed height and only those in view (plus a margin) are in the page,
//! so thousands of conversations scroll smoothly; the next page loads when
//! the end comes near.

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{HistoryEntry, SearchResult, format_usd, usd_to_nanos};

use crate::app::Page;
use crate::ipc;
use crate::pages::CompareState;

/// Open conversation `id` in the compare view; then bring `message` (a
/// stored message id) into view, when given.
fn open(compare: CompareState, page: Option<RwSignal<Page>>, id: i64, message: Option<i64>) {
    spawn_local(async move {
        match ipc::open_conversation(id).await {
            Ok(saved) => {
                compare.load(saved);
                // Setting the page, even to the one shown, builds the view
                // anew (and loads the catalog again): only switch to it.
                if let Some(p) = page
                    && p.get_untracked() != Page::Compare
                {
                    p.set(Page::Compare);
                }
                if let Some(m) = message {
                    reveal(m);
                }
            }
            Err(e) => compare.notice.set(Some(format!(
                "Could not open the conversation: {}",
                e.message
            ))),
        }
    });
}

/// Scroll the answer (or the prompt) with stored id `message` into view
/// once it is drawn, and flash it.
fn reveal(message: i64) {
    let find = move || {
        let doc = web_sys::window()?.document()?;
        doc.query_selector(&format!(
            "[data-message=\"{message}\"], [data-user-message=\"{message}\"]"
        ))
        .ok()
        .flatten()
    };
    set_timeout(
        move || {
            if let Some(el) = find() {
                el.scroll_into_view();
                let _ = el.class_list().add_1("flash");
            }
        },
        std::time::Duration::from_millis(120),
    );
}

/// Height of one conversation row (CSS `.history-item` matches it).
const ROW_PX: f64 = 50.0;
/// Rows kept in the page above and below the visible ones.
const MARGIN_ROWS: usize = 10;
/// Load the next page when fewer rows than this remain below the view.
const LOAD_AHEAD_ROWS: f64 = 15.0;

#[component]
fn HistoryItem(
    entry: HistoryEntry,
    compare: CompareState,
    deleted: RwSignal<Vec<i64>>,
) -> impl IntoView {
    let page = use_context::<RwSignal<Page>>();
    let id = entry.id;
    let title = RwSignal::new(entry.title.clone());
    let editing = RwSignal::new(false);
    let input = NodeRef::<html::Input>::new();
    let save_title = move || {
        let Some(el) = input.get_untracked() else {
            return;
        };
        let value = el.value().trim().to_owned();
        editing.set(false);
        if value.is_empty() || value == title.get_untracked() {
            return;
        }
        title.set(value.clone());
        if compare.conversation.get_untracked() == Some(id) {
            compare.title.set(value.clone());
        }
        spawn_local(async move {
            if let Err(e) = ipc::rename_conversation(id, &value).await {
                compare
                    .notice
                    .set(Some(format!("Rename failed: {}", e.message)));
            }
        });
    };
    let delete = move |_| {
        deleted.update(|d| d.push(id));
        if compare.conversation.get_untracked() == Some(id) {
            compare.new_conversation();
        }
        // The row is hidden at once; the delete happens unless undone.
        set_timeout(
            move || {
                if deleted.get_untracked().contains(&id) {
                    spawn_local(async move {
                        if let Err(e) = ipc::delete_conversation(id).await {
                            compare
                                .notice
                                .set(Some(format!("Delete failed: {}", e.message)));
                        }
                        deleted.update(|d| d.retain(|x| *x != id));
                        compare.history_version.update(|v| *v += 1);
                    });
                }
            },
            std::time::Duration::from_secs(6),
        );
    };
    let export = move |format: &'static str| {
        spawn_local(async move {
            match ipc::export_conversation(id, format).await {
                Ok(path) => compare.notice.set(Some(format!("Exported to {path}"))),
                Err(e) => compare
                    .notice
                    .set(Some(format!("Export failed: {}", e.message))),
            }
        });
    };
    let pinned = entry.pinned;
    let pin = move |_| {
        spawn_local(async move {
            match ipc::set_pinned(id, !pinned).await {
                // Reload from the first page: the store decides the order.
                Ok(()) => compare.history_version.update(|v| *v += 1),
                Err(e) => compare
                    .notice
                    .set(Some(format!("Pin failed: {}", e.message))),
            }
        });
    };
    let cost = usd_to_nanos(&entry.cost_usd)
        .filter(|n| *n > 0)
        .map(format_usd);
    let active = move || compare.conversation.get() == Some(id);
    view! {
        <li class="history-item" class:active=active class:pinned=pinned data-conversation=id.to_string()>
            <Show when=move || editing.get() fallback=move || view! {
                <button class="history-open" on:click=move |_| open(compare, page, id, None) title="Open">
                    <span class="history-title">{move || title.get()}</span>
                </button>
            }>
                <input class="history-rename" node_ref=input prop:value=move || title.get_untracked()
                    on:keydown=move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
                        "Enter" => save_title(),
                        "Escape" => editing.set(false),
                        _ => {}
                    }
                    on:blur=move |_| save_title() />
            </Show>
            <div class="history-meta">
                {entry.pinned.then_some("📌 ")}
                {format!("{} messages", entry.message_count)}
                {cost.map(|c| format!(" · {c}"))}
            </div>
            <div class="history-actions">
                <button class="icon history-pin" title=if pinned { "Unpin" } else { "Pin to the top" }
                    aria-pressed=pinned.to_string() on:click=pin>"📌"</button>
                <button class="icon" title="Rename" on:click=move |_| {
                    editing.set(true);
                    set_timeout(move || { if let Some(el) = input.get_untracked() { let _ = el.focus(); } }, std::time::Duration::from_millis(10));
                }>"✎"</button>
                <button class="icon" title="Export as Markdown" on:click=move |_| export("md")>"MD"</button>
                <button class="icon" title="Export as JSON" on:click=move |_| export("json")>"{}"</button>
                <button class="icon history-delete" title="Delete" on:click=delete>"🗑"</button>
            </div>
        </li>
    }
}

#[component]
pub fn Sidebar() -> impl IntoView {
    let page = use_context::<RwSignal<Page>>();
    let compare = use_context::<CompareState>().unwrap_or_default();
    let items = RwSignal::new(Vec::<HistoryEntry>::new());
    let next = RwSignal::new(None::<String>);
    let deleted = RwSignal::new(Vec::<i64>::new());
    let query = RwSignal::new(String::new());
    let results = RwSignal::new(None::<Vec<SearchResult>>);
    let search_box = NodeRef::<html::Input>::new();

    // The first page, again whenever history changes.
    Effect::new(move |_| {
        compare.history_version.track();
        spawn_local(async move {
            match ipc::list_conversations(None).await {
                Ok(p) => {
                    items.set(p.items);
                    next.set(p.next);
                }
                Err(e) => compare
                    .notice
                    .set(Some(format!("History unavailable: {}", e.message))),
            }
        });
    });
    let loading = RwSignal::new(false);
    let load_more = move || {
        if loading.get_untracked() {
            return;
        }
        let Some(after) = next.get_untracked() else {
            return;
        };
        loading.set(true);
        spawn_local(async move {
            if let Ok(p) = ipc::list_conversations(Some(after)).await {
                items.update(|i| i.extend(p.items));
                next.set(p.next);
            }
            loading.set(false);
        });
    };
    let more = move |_| load_more();
    let run_search = move |q: String| {
        query.set(q.clone());
        if q.trim().is_empty() {
            results.set(None);
            return;
        }
        spawn_local(async move {
            let found = ipc::search_history(&q).await.unwrap_or_default();
            // Only the answer to the latest query is shown.
            if query.get_untracked() == q {
                results.set(Some(found));
            }
        });
    };
    let _ctrl_k = window_event_listener(leptos::ev::keydown, move |ev| {
        if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("k") {
            ev.prevent_default();
            if let Some(el) = search_box.get_untracked() {
                let _ = el.focus();
                el.select();
            }
        }
    });

    let item = move |target: Page, id: &'static str, label: &'static str| {
        let active = move || page.is_some_and(|p| p.get() == target);
        view! {
            <li>
                <button class="nav-item" id=id class:active=active aria-current=move || active().then_some("page")
                    on:click=move |_| { if let Some(p) = page { p.set(target) } }>
                    {label}
                </button>
            </li>
        }
    };
    let visible = Memo::new(move |_| {
        let gone = deleted.get();
        items
            .get()
            .into_iter()
            .filter(|e| !gone.contains(&e.id))
            .collect::<Vec<_>>()
    });
    // The virtualized window over `visible`.
    let scroller = NodeRef::<html::Div>::new();
    let scroll_top = RwSignal::new(0.0_f64);
    let viewport = RwSignal::new(600.0_f64);
    let measure = move || {
        let Some(el) = scroller.get_untracked() else {
            return;
        };
        scroll_top.set(f64::from(el.scroll_top()));
        viewport.set(f64::from(el.client_height()).max(ROW_PX));
        let rows_below = (f64::from(el.scroll_height())
            - f64::from(el.scroll_top())
            - f64::from(el.client_height()))
            / ROW_PX;
        if rows_below < LOAD_AHEAD_ROWS {
            load_more();
        }
    };
    Effect::new(move |_| {
        // Measure once the list is in the page, and after each page.
        scroller.track();
        visible.track();
        request_animation_frame(measure);
    });
    let _resize = window_event_listener(leptos::ev::resize, move |_| measure());
    let range = Memo::new(move |_| {
        let n = visible.with(Vec::len);
        let first = ((scroll_top.get() / ROW_PX).floor() as usize).saturating_sub(MARGIN_ROWS);
        let shown = (viewport.get() / ROW_PX).ceil() as usize + 2 * MARGIN_ROWS;
        let first = first.min(n);
        (first, (first + shown).min(n), n)
    });
    let rows = move || {
        let (first, end, _) = range.get();
        visible.with(|v| v[first..end].to_vec())
    };
    let pad_top = move || format!("{}px", range.get().0 as f64 * ROW_PX);
    let pad_bottom = move || {
        let (_, end, n) = range.get();
        format!("{}px", (n - end) as f64 * ROW_PX)
    };
    let undo =
        move || {
            (!deleted.get().is_empty()).then(|| view! {
            <div class="undo" id="undo-delete">
                {move || format!("Deleted {} conversation(s).", deleted.get().len())}
                <button class="small" on:click=move |_| deleted.set(Vec::new())>"Undo"</button>
            </div>
        })
        };
    view! {
        <nav class="sidebar" id="sidebar" aria-label="Navigation">
            <div class="brand">
                <img class="brand-mark" src="32x32.png" alt="" width="22" height="22" />
                <span class="brand-name">"Switchboard"</span>
            </div>
            <ul class="nav">
                {item(Page::Compare, "nav-compare", "Compare")}
                {item(Page::Spend, "nav-spend", "Spend")}
                {item(Page::Leaderboard, "nav-leaderboard", "Leaderboard")}
                {item(Page::Settings, "nav-settings", "Settings")}
            </ul>
            <input class="history-search" id="history-search" type="search" placeholder="Search history (Ctrl+K)"
                node_ref=search_box prop:value=move || query.get()
                on:input=move |ev| run_search(event_target_value(&ev))
                on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Escape" { run_search(String::new()) } />
            {move || results.get().map(|found| view! {
                <ul class="search-results" id="search-results">
                    {if found.is_empty() { Some(view! { <li class="dim">"No match."</li> }) } else { None }}
                    {found.into_iter().map(|r| {
                        let (conv, msg) = (r.conversation, r.message);
                        view! {
                            <li class="search-hit" data-conversation=conv.to_string()>
                                <button class="history-open" on:click=move |_| open(compare, page, conv, Some(msg))>
                                    <span class="history-title">{r.title.clone()}</span>
                                    <span class="snippet">
                                        {r.snippet.into_iter().map(|(text, hit)| if hit {
                                            view! { <mark>{text}</mark> }.into_any()
                                        } else {
                                            view! { <span>{text}</span> }.into_any()
                                        }).collect_view()}
                                    </span>
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <section class="sidebar-section">
                <h2 class="sidebar-heading">"Conversations"</h2>
                {undo}
                <Show when=move || !visible.with(Vec::is_empty) fallback=|| view! {
                    <p class="sidebar-empty" id="conversations-empty">"No conversations yet."</p>
                }>
                    <div class="history-scroll" id="history-scroll" node_ref=scroller on:scroll=move |_| measure()>
                        <ul class="history-list" id="history-list" data-total=move || range.get().2.to_string()>
                            <li class="history-pad" aria-hidden="true" style:height=pad_top></li>
                            <For each=rows key=|e| (e.id, e.updated_at_ms, e.pinned) let:entry>
                                <HistoryItem entry=entry compare=compare deleted=deleted />
                            </For>
                            <li class="history-pad" aria-hidden="true" style:height=pad_bottom></li>
                        </ul>
                    </div>
                </Show>
                <Show when=move || next.get().is_some()>
                    <button class="small load-more" on:click=more>"Load more"</button>
                </Show>
            </section>
        </nav>
    }
}
