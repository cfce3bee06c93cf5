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
//! [`Store::record_judgment`] writes them with the verdict, so history and
//! the ledger cannot disagree because one write failed after the other.
//! When the verdict cannot be written at all (its round was deleted
//! meanwhile, the disk keeps failing), the cost is still written, alone
//! and not attributed to the conversation: money spent is never dropped
//! from the ledger, the conversation's total still matches its ledger
//! rows, and the caller is told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ChatService, Prepared, Registered, drive, report, summarize_outcome};
use crate::chat::AttemptResult;
use crate::hooks::{
    BudgetDenied, BudgetGate, PendingReservation, Reservation, SettledCost, SpendContext,
};
use crate::judge;
use crate::money::Cost;
use crate::store::{
    Judgment, MessageId, NewJudgment, PendingSettle, Store, StoreError, time::now_ms,
};
use switchboard_protocol::{
    AskRequest, JudgeRequest, JudgeVerdict, PaneEvent, PaneParams, Turn, TurnRole,
};

/// How many times the verdict and its cost are offered to the database
/// (a busy or briefly failing one) before the cost is written alone.
const RECORD_TRIES: u32 = 3;

/// The wait before the second try, doubled for each one after.
const RECORD_RETRY: Duration = Duration::from_millis(100);

impl ChatService {
    /// Ask `request.target` about the round's answers and record its
    /// verdict (or merged answer) with the round. `sink` sees its text as
    /// it streams, like a pane's events, ending with
    /// [`PaneEvent::Finished`]; it returns false when nobody listens any
    /// more, which stops the judge, as dropping this future does.
    pub async fn judge_round(
        self: &Arc<Self>,
        request: JudgeRequest,
        mut sink: impl FnMut(PaneEvent) -> bool + Send,
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
        let labels: Vec<(String, i64)> = answers
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (judge::label(i), id.0))
            .collect();
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
                    record_verdict(&store, &deferred, &new)
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
        let joined = drive(&cancel, &mut sink, work).await;
        stop_if_dropped.disarm();
        let (summary, recorded) = joined.map_err(|e| {
            StoreError::invalid(format!("the judge failed inside Switchboard: {e}"))
        })?;
        sink(PaneEvent::Finished(Box::new(summary)));
        let labels = request
            .panes
            .iter()
            .enumerate()
            .map(|(i, k)| (judge::label(i), k.clone()))
            .collect();
        Ok(recorded?.into_verdict(labels))
    }
}

/// Write the verdict with its ledger rows in one transaction, trying a
/// busy database again; when that cannot be done, write the cost alone
/// (through the gate, which keeps retrying a failing database) and say so.
fn record_verdict(
    store: &Store,
    deferred: &DeferredSettles,
    new: &NewJudgment<'_>,
) -> Result<Judgment, StoreError> {
    let settles = deferred.take();
    let mut tries = 1;
    loop {
        match store.record_judgment(new, &settles) {
            Ok(j) => return Ok(j),
            // A busy or failing database may recover; a round that is
            // gone will not come back.
            Err(StoreError::Sqlite(_)) if tries < RECORD_TRIES => {
                std::thread::sleep(RECORD_RETRY * 2u32.pow(tries - 1));
                tries += 1;
            }
            Err(e) => {
                let cost = new.result.cost.map_or_else(
                    || "an unknown amount".to_owned(),
                    |c| format!("${}", c.total.usd()),
                );
                deferred.settle_alone(settles);
                return Err(StoreError::invalid(format!(
                    "the judge's verdict could not be saved ({e}); what it cost ({cost}) is in \
                     the spend ledger"
                )));
            }
        }
    }
}

/// A budget gate that holds and checkpoints through another one but keeps
/// its settles, to be written with what they paid for.
#[derive(Debug)]
struct DeferredSettles {
    inner: Arc<dyn BudgetGate>,
    settled: Mutex<Vec<PendingSettle>>,
}

impl DeferredSettles {
    fn new(inner: Arc<dyn BudgetGate>) -> Self {
        Self {
            inner,
            settled: Mutex::new(Vec::new()),
        }
    }

    /// The settles kept so far (and forget them).
    fn take(&self) -> Vec<PendingSettle> {
        self.settled
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Write `settles` through the gate after all, each on its own, no
    /// longer attributed to the conversation: its history could not take
    /// the verdict, so its total and its ledger rows still agree, while
    /// the spend (and any budget's count, tags included) keeps the money.
    fn settle_alone(&self, settles: Vec<PendingSettle>) {
        for mut s in settles {
            s.reservation.context.conversation = None;
            self.inner.settle(s.reservation, s.actual);
        }
    }
}

impl BudgetGate for DeferredSettles {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        self.inner.reserve(ctx, estimate)
    }

    fn checkpoint(&self, reservation: &Reservation, progress: &AttemptResult) {
        self.inner.checkpoint(reservation, progress);
    }

    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        let kept = PendingSettle {
            reservation,
            actual,
            at: now_ms(),
        };
        match self.settled.lock() {
            Ok(mut s) => s.push(kept),
            // Never lose a settle: write it now instead.
            Err(_) => self.inner.settle(kept.reservation, kept.actual),
        }
    }

    fn queues_writes(&self) -> bool {
        self.inner.queues_writes()
    }

    fn reserve_queued(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Option<PendingReservation> {
        self.inner.reserve_queued(ctx, estimate)
    }
}
