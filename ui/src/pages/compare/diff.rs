//! "Diff with…": what differs between this card's answer and another
//! pane's answer to the same round, word by word (fenced code line by
//! line), inline or side by side. The comparison is
//! [`switchboard_diff::diff`], plain Rust tested on the host; its HTML
//! escapes all model text, so it is safe to set as inner HTML. It reads the
//! answers' text signals, so it works on reopened conversations and
//! follows an answer that is regenerated; while either answer streams it
//! is recomputed at most once per animation frame ([`FramePace`]), and
//! only while the comparison is open (its panel owns the effect that
//! watches the texts).

use leptos::prelude::*;
use switchboard_diff::FramePace;

use super::state::{Answer, CompareState, Round, Status};
use crate::components::target_parts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Inline,
    Side,
}

/// The picker for the card's actions and, once a pane is picked, the
/// comparison below the card.
#[component]
pub fn DiffWith(state: CompareState, round: Round, answer: Answer) -> impl IntoView {
    let other = RwSignal::new(None::<String>);
    let mode = RwSignal::new(Mode::Inline);
    let others: Vec<Answer> = round
        .answers
        .iter()
        .filter(|a| a.pane != answer.pane)
        .cloned()
        .collect();
    if others.is_empty() {
        return None;
    }
    let label = move |a: &Answer| {
        let n = state
            .panes
            .with_untracked(|ps| ps.iter().position(|p| p.key == a.pane))
            .map_or(0, |i| i + 1);
        let (model, _) = target_parts(&a.target.get_untracked());
        format!("Pane {n}: {model}")
    };
    let options = others
        .iter()
        .map(|a| {
            let (key, text) = (a.pane.clone(), label(a));
            view! { <option value=key>{text}</option> }
        })
        .collect_view();
    let panel = {
        let answer = answer.clone();
        move || {
            let key = other.get()?;
            let theirs = others.iter().find(|a| a.pane == key)?.clone();
            let title = label(&theirs);
            let texts = latest_per_frame(answer.clone(), theirs);
            let body = move || {
                let d = texts.with(|(mine, theirs)| switchboard_diff::diff(mine, theirs));
                if d.identical() {
                    return view! { <p class="diff-identical" role="status">"The answers are identical."</p> }.into_any();
                }
                let (del, ins) = d.counts();
                let counts = format!("−{del} · +{ins} words (code: lines)");
                match mode.get() {
                    Mode::Inline => view! {
                        <p class="dim diff-counts">{counts}</p>
                        <div class="diff-inline diff-text" inner_html=d.inline_html()></div>
                    }
                    .into_any(),
                    Mode::Side => {
                        let (left, right) = d.side_html();
                        view! {
                            <p class="dim diff-counts">{counts}</p>
                            <div class="diff-side">
                                <div class="diff-text diff-left" inner_html=left></div>
                                <div class="diff-text diff-right" inner_html=right></div>
                            </div>
                        }
                        .into_any()
                    }
                }
            };
            Some(view! {
                <section class="diff-panel" aria-label=format!("Differences with {title}")>
                    <header class="diff-head">
                        <span>{format!("Deleted from this answer / inserted by {title}")}</span>
                        <div class="diff-modes" role="group" aria-label="Diff layout">
                            <button class="small diff-inline-btn" aria-pressed=move || (mode.get() == Mode::Inline).to_string()
                                on:click=move |_| mode.set(Mode::Inline)>"Inline"</button>
                            <button class="small diff-side-btn" aria-pressed=move || (mode.get() == Mode::Side).to_string()
                                on:click=move |_| mode.set(Mode::Side)>"Side by side"</button>
                            <button class="icon diff-close" aria-label="Close the diff" on:click=move |_| other.set(None)>"×"</button>
                        </div>
                    </header>
                    {body}
                </section>
            })
        }
    };
    let streaming = {
        let status = answer.status.clone();
        move || status.get() == Status::Streaming
    };
    Some(view! {
        <div class="diff-row">
            <select class="small diff-with" aria-label="Diff with another pane's answer"
                disabled=streaming
                prop:value=move || other.get().unwrap_or_default()
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    other.set((!v.is_empty()).then_some(v));
                }>
                <option value="">"Diff with…"</option>
                {options}
            </select>
            {panel}
        </div>
    })
}

/// The texts of `mine` and `theirs`, refreshed at most once per animation
/// frame however many tokens arrive in between. Made under the diff
/// panel's owner, its effect ends when the panel closes.
fn latest_per_frame(mine: Answer, theirs: Answer) -> RwSignal<(String, String)> {
    let texts = RwSignal::new((mine.text.get_untracked(), theirs.text.get_untracked()));
    let pace = StoredValue::new(FramePace::default());
    Effect::new(move |_| {
        mine.text.track();
        theirs.text.track();
        if !pace.try_update_value(FramePace::changed).unwrap_or(false) {
            return;
        }
        let (mine, theirs) = (mine.clone(), theirs.clone());
        request_animation_frame(move || {
            // The panel may have closed since: then there is nothing to set.
            if pace.try_update_value(FramePace::frame) == Some(true) {
                let _ = texts.try_set((mine.text.get_untracked(), theirs.text.get_untracked()));
            }
        });
    });
    texts
}
