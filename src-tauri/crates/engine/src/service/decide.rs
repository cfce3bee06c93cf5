//! The app's judge: run a chosen model over a round's answers (labelled,
//! never named) and record what it said with its cost, in the ledger and
//! the conversation's total, never as a vote. A judge given a stream id
//! stops like a pane's answer ([`ChatService::stop`]): `stopped`, with its
//! partial text and the cost of what arrived recorded.

use std::sync::Arc;

use super::{ChatService, Prepared, Registered};
use crate::hooks::SpendContext;
use crate::judge;
use crate::store::{MessageId, StoreError};
use switchboard_protocol::{AskRequest, JudgeRequest, JudgeVerdict, PaneParams, Turn, TurnRole};

impl ChatService {
    /// Ask `request.target` about the round's answers and record its
    /// verdict (or merged answer) with the round.
    pub async fn judge_round(
        self: &Arc<Self>,
        request: JudgeRequest,
    ) -> Result<JudgeVerdict, StoreError> {
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
                    answers.push(store.message(id)?.content);
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
        let texts: Vec<&str> = answers.iter().map(String::as_str).collect();
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
        let Prepared {
            router,
            route,
            chat,
            ..
        } = self
            .prepare(&ask)
            .await
            .map_err(|e| StoreError::invalid(format!("the judge cannot run: {}", e.message)))?;
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
        let outcome = router
            .run_until(&route, &chat, &spend, &cancel, |_| {})
            .await;
        let mut result = outcome.result.clone();
        result.cost = outcome.cost();
        let judged = {
            let (store, task, target) = (store.clone(), request.task, request.target.clone());
            let (prompt, result) = (prompt.clone(), result.clone());
            tokio::task::spawn_blocking(move || {
                store.record_judgment(round, task, &prompt, &target, &result)
            })
            .await
            .map_err(|e| StoreError::invalid(e.to_string()))??
        };
        // Only now is the judge done: the app's shutdown waits for running
        // streams, and this one's verdict and cost are in history.
        drop(registered);
        let labels = request
            .panes
            .iter()
            .enumerate()
            .map(|(i, k)| (judge::label(i), k.clone()))
            .collect();
        Ok(judged.into_verdict(labels))
    }
}
