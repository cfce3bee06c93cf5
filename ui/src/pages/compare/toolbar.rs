//! The compare toolbar: add a pane, the layout (columns or grid),
//! synchronized scrolling, blind mode, incognito, a new conversation, its title and
//! tags, what it has cost so far, and "Stop all".

use leptos::prelude::*;
use switchboard_protocol::{format_usd, usd_to_nanos};

use super::state::{CompareState, Layout, MAX_PANES};

/// What the conversation's answers cost, summed exactly.
fn total(state: CompareState) -> Option<String> {
    let mut nanos = 0i64;
    let mut estimated = false;
    let mut any = false;
    for r in state.rounds.get() {
        for a in &r.answers {
            if let Some(s) = a.summary.get()
                && let Some(n) = s.cost_usd.as_deref().and_then(usd_to_nanos)
            {
                nanos += n;
                any = true;
                estimated |= s.cost_estimated;
            }
        }
    }
    // Judges' verdicts cost money too.
    for (_, v) in state.judged.get() {
        if let Some(n) = v.cost_nanos {
            nanos += n;
            any = true;
            estimated |= v.cost_estimated;
        }
    }
    any.then(|| {
        if estimated {
            format!("{} (incl. est.)", format_usd(nanos))
        } else {
            format_usd(nanos)
        }
    })
}

#[component]
pub fn Toolbar(state: CompareState) -> impl IntoView {
    let full = move || state.panes.with(Vec::len) >= MAX_PANES;
    view! {
        <div class="compare-toolbar" role="toolbar" aria-label="Compare">
            <button class="small" id="add-pane" on:click=move |_| state.add_pane() disabled=full>"+ Pane"</button>
            <label class="toggle" title="Panes side by side (scrolling sideways beyond the minimum width), one above the other, or in rows of three">
                "Layout "
                <select id="layout" aria-label="Layout of the panes"
                    prop:value=move || match state.layout.get() { Layout::Columns => "columns", Layout::Rows => "rows", Layout::Grid => "grid" }
                    on:change=move |ev| state.layout.set(match event_target_value(&ev).as_str() {
                        "grid" => Layout::Grid,
                        "rows" => Layout::Rows,
                        _ => Layout::Columns,
                    })>
                    <option value="columns">"Columns"</option>
                    <option value="rows">"Rows"</option>
                    <option value="grid">"Grid"</option>
                </select>
            </label>
            <label class="toggle" title="Scrolling one pane shows the same round in the others"><input type="checkbox" id="sync-scroll" prop:checked=move || state.sync_scroll.get() on:change=move |ev| state.sync_scroll.set(event_target_checked(&ev)) />"Sync scroll"</label>
            <label class="toggle" title="Hide models, readouts and costs and shuffle the panes until you vote on the round"><input type="checkbox" id="blind-toggle" prop:checked=move || state.blind.get() on:change=move |ev| state.set_blind(event_target_checked(&ev)) />"Blind"</label>
            <label class="toggle" title="Nothing of this conversation is written to disk"><input type="checkbox" id="incognito" prop:checked=move || state.incognito.get() on:change=move |ev| state.incognito.set(event_target_checked(&ev)) />"Incognito"</label>
            <button class="small" id="new-conversation" on:click=move |_| state.new_conversation()>"New"</button>
            <span class="conversation-title" id="conversation-title">{move || state.title.get()}</span>
            <input class="tags-input" id="conversation-tags" type="text" placeholder="tags (client, project…)"
                aria-label="Tags of this conversation, comma-separated"
                title="Tags of this conversation, comma-separated: spend is broken down by them"
                prop:value=move || state.tags.get().join(", ")
                on:change=move |ev| state.set_tags(
                    event_target_value(&ev)
                        .split(',')
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .collect(),
                ) />
            <span class="spacer"></span>
            <span class="conversation-total" id="conversation-total" class:blind-hidden=move || state.hides(None) title="Cost of every answer (and judge) in this conversation">
                {move || total(state).map(|t| format!("Conversation: {t}")).unwrap_or_default()}
            </span>
            <Show when=move || state.any_streaming() || state.checking.get()>
                <button class="small danger" id="stop-all" on:click=move |_| state.stop_all() title="Stop all (Esc)">"Stop all"</button>
            </Show>
        </div>
    }
}
