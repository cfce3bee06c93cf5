//! The app's judge: run a chosen model over a round's answers (labelled,
//! never named) and record what it said with its cost, in the ledger and
//! the conversation's total, never as a vote.
//!
//! It runs like a pane's answer: on its own task, its text streaming to
//! the caller's sink as [`PaneEvent`]s, so a caller that goes away (the
//! window closed, the IPC call dropped) stops it and it still settles and
//! is recorded. Given a stream id it stops like an answer
//! ([`ChatService::stop`]): `stopped`, with its partial text and the cost
//! of what arrived recorded.
//!
//! Its ledger rows and its verdict are written in one transaction: the
//! router's settles go to a [`DeferredSettles`] gate, and
//! [`crate::Store::record_judged`] writes them with the verdict (see
//! there for a verdict that cannot be written).

use std::sync::Arc;

use super::{
    ChatService, Prepared, Registered, StreamHub, deliver, drive, report, summarize_outcome,
};
use crate::hooks::SpendContext;
use crate::judge;
use crate::store::{DeferredSettles, MessageId, NewJudgment, StoreError};
use switchboard_protocol::{
    AskRequest, JudgeRequest, JudgeVerdict, PaneEvent, PaneParams, StreamMessage, Turn, TurnRole,
};

impl ChatService {
    /// Ask `request.target` about the round's answers and record its
    /// verdict (or merged answer) with the round. `sink` sees its text as
    /// it streams, like a pane's events, ending with
    /// [`PaneEvent::Finished`]; it returns false when nobody listens any
    /// more, which stops the judge, as dropping this future does.
    pub async fn judge_round(
        self: &Arc<Self>,
        request: JudgeRequest,
        sink: impl FnMut(PaneEvent) -> bool + Send,
    ) -> Result<JudgeVerdict, StoreError> {
        let hub = StreamHub::new(deliver(sink));
        self.judge_round_in(request, &hub).await
    }

    /// [`ChatService::judge_round`] with its events sent through `hub`,
    /// under `request.stream_id`, together with the hub's other streams.
    pub async fn judge_round_in<S>(
        self: &Arc<Self>,
        request: JudgeRequest,
        hub: &StreamHub<S>,
    ) -> Result<JudgeVerdict, StoreError>
    where
        S: FnMut(Vec<StreamMessage>) -> bool + Send,
    {
        let store = self.store()?.clone();
        let round = MessageId(request.round);
        let read = {
            let (store, panes) = (store.clone(), request.panes.clone());
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let question = store.message(round)?;
                let mut answers = Vec::new();
                for key in &panes {
                    let id = store.answer_of_pane(round, key)?.ok_or_else(|| {
                        StoreError::invalid(format!("pane {key} has no answer to this round"))
                    })?;
                    answers.push((id, store.message(id)?.content));
                }
                let tags = store.conversation(question.conversation)?.tags;
                Ok((question, answers, tags))
            })
        };
        let (question, answers, tags) = read
            .await
            .map_err(|e| StoreError::invalid(e.to_string()))??;
        if answers.len() < 2 {
            return Err(StoreError::invalid("a judge compares at least two answers"));
        }
        let prompt = request
            .prompt
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| judge::default_prompt(request.task).to_owned());
        let texts: Vec<&str> = answers.iter().map(|(_, t)| t.as_str()).collect();
        let ask = AskRequest {
            stream_id: 0,
            target: request.target.clone(),
            turns: vec![Turn {
                role: TurnRole::User,
                content: judge::judge_message(&prompt, &question.content, &texts),
                attachments: Vec::new(),
            }],
            params: PaneParams::default(),
            record: None,
        };
        let mut deferred = None;
        let Prepared {
            router,
            route,
            chat,
            ..
        } = self
            .prepare_with(&ask, |gate| {
                let d = Arc::new(DeferredSettles::new(gate));
                deferred = Some(Arc::clone(&d));
                d
            })
            .await
            .map_err(|e| StoreError::invalid(format!("the judge cannot run: {}", e.message)))?;
        let deferred =
            deferred.ok_or_else(|| StoreError::invalid("the judge's spend gate is missing"))?;
        // Billed to the conversation (and its tags) like its answers.
        let spend = SpendContext {
            tags,
            conversation: Some(question.conversation.to_string()),
            ..SpendContext::default()
        };
        // Stoppable by its stream id like a pane's answer (and by the app's
        // exit): it ends `stopped`, its partial text and cost kept.
        let registered = (request.stream_id != 0).then(|| Registered::new(self, request.stream_id));
        let cancel = registered
            .as_ref()
            .map_or_else(|| self.shutdown.child_token(), |r| r.cancel.clone());
        // A caller that goes away stops the judge; its task still settles
        // and records it.
        let stop_if_dropped = cancel.clone().drop_guard();
        let stream = hub.open(request.stream_id, cancel.clone());
        let labels: Vec<(String, i64)> =
            judge::labelled(answers.iter().map(|(id, _)| id.0)).collect();
        let work = {
            let (cancel, task, target) = (cancel.clone(), request.task, request.target.clone());
            move |tx| async move {
                let outcome = router
                    .run_until(&route, &chat, &spend, &cancel, |ev| report(&tx, &ev))
                    .await;
                let mut result = outcome.result.clone();
                result.cost = outcome.cost();
                let recorded = tokio::task::spawn_blocking(move || {
                    let new = NewJudgment {
                        round,
                        task,
                        prompt: &prompt,
                        target: &target,
                        result: &result,
                        labels: &labels,
                    };
                    store.record_judged(&new, &deferred)
                })
                .await
                .map_err(|e| StoreError::invalid(e.to_string()))
                .and_then(|r| r);
                // Only now is the judge done: the app's shutdown waits for
                // running streams, and this one's verdict and cost are in
                // history.
                drop(registered);
                (summarize_outcome(&outcome), recorded)
            }
        };
        let joined = drive(&stream, work).await;
        stop_if_dropped.disarm();
        let (summary, recorded) = joined.map_err(|e| {
            StoreError::invalid(format!("the judge failed inside Switchboard: {e}"))
        })?;
        stream.finish(PaneEvent::Finished(Box::new(summary)));
        let labels = judge::labelled(request.panes.iter().cloned()).collect();
        Ok(recorded?.into_verdict(labels))
    }
}
