//! Blind votes: while blind mode hides a round's names, readouts and
//! costs, each of its cards offers "Best", "Tie" and "All bad" once every
//! answer is in. The vote is stored with the round (by pane, the engine
//! finds the answers) and then the round is revealed. "Change vote" beside
//! what was said offers the buttons again: the latest vote of a round is
//! the one that counts (on the leaderboard too, where a round first voted
//! blind stays blind).

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{CastVote, Verdict};

use super::state::{Answer, CompareState, Round, Status};
use crate::ipc;

fn cast(state: CompareState, round: &Round, verdict: Verdict, winner: Option<String>) {
    let Some(ids) = round.ids.get_untracked() else {
        state.notice.set(Some(
            "Votes are kept with the conversation: turn incognito off to vote.".into(),
        ));
        return;
    };
    let vote = CastVote {
        round: ids.user_message,
        panes: round.answers.iter().map(|a| a.pane.clone()).collect(),
        verdict,
        winner: winner.clone(),
        blind: state.hides(Some(round.id)),
    };
    let id = round.id;
    spawn_local(async move {
        match ipc::record_vote(&vote).await {
            Ok(_) => {
                // The new vote replaces what the round showed.
                state.voted_best.update(|w| {
                    w.retain(|(r, _)| *r != id);
                    w.extend(winner.map(|p| (id, p)));
                });
                state.voted.update(|v| {
                    v.retain(|(r, _)| *r != id);
                    v.push((id, verdict.as_str()));
                });
                if state.revoting.get_untracked() == Some(id) {
                    state.revoting.set(None);
                }
            }
            Err(e) => state
                .notice
                .set(Some(format!("Vote not saved: {}", e.message))),
        }
    });
}

/// The vote buttons of one card, and once voted, what was said.
#[component]
pub fn VoteBar(state: CompareState, round: Round, answer: Answer) -> impl IntoView {
    let round_id = round.id;
    let answers = round.answers.clone();
    let changing = move || state.revoting.get() == Some(round_id);
    let ready = move || {
        (state.hides(Some(round_id)) || changing())
            && answers.len() >= 2
            && answers.iter().all(|a| a.status.get() != Status::Streaming)
    };
    let pane = answer.pane.clone();
    let (r1, r2, r3) = (round.clone(), round.clone(), round.clone());
    let voted = {
        let pane = pane.clone();
        move || {
            if changing() {
                return None;
            }
            let v = state.verdict(round_id)?;
            let text = match v {
                "best" => {
                    // The winner is the card whose pane was picked; the
                    // others say nothing.
                    let won = state
                        .voted_best
                        .with(|w| w.iter().any(|(r, p)| *r == round_id && *p == pane));
                    if !won {
                        return None;
                    }
                    "Your pick: best"
                }
                "tie" => "You voted: tie",
                _ => "You voted: all bad",
            };
            Some(view! {
                <span class="vote-result">{text}</span>
                <button class="small vote-change" title="Vote again on this round: the latest vote counts"
                    on:click=move |_| state.revoting.set(Some(round_id))>"Change vote"</button>
            })
        }
    };
    view! {
        <Show when=ready.clone()>
            {
                let (r1, r2, r3, pane) = (r1.clone(), r2.clone(), r3.clone(), pane.clone());
                view! {
                    <div class="vote-bar" role="group" aria-label="Vote on this round">
                        <button class="small vote-best" title="This answer is the best of the round"
                            on:click=move |_| cast(state, &r1, Verdict::Best, Some(pane.clone()))>"Best"</button>
                        <button class="small vote-tie" on:click=move |_| cast(state, &r2, Verdict::Tie, None)>"Tie"</button>
                        <button class="small vote-bad" on:click=move |_| cast(state, &r3, Verdict::AllBad, None)>"All bad"</button>
                        {move || changing().then(|| view! {
                            <button class="small vote-cancel" on:click=move |_| state.revoting.set(None)>"Keep my vote"</button>
                        })}
                    </div>
                }
            }
        </Show>
        {voted}
    }
}
