//! Group commit for request rates in the thousands per second (the Local
//! API): the same ledger, holds, checkpoints and health rows as
//! [`SqliteBudgetGate`](super::SqliteBudgetGate) and
//! [`SqliteHealth`](super::SqliteHealth) write, written by one thread in
//! one transaction per batch instead of one transaction each.
//!
//! Why it keeps the guarantees of the per-call gate:
//! - A hold is committed before its attempt is sent: [`BatchedGate`]'s
//!   `reserve` waits for the batch that holds it, and the budget check
//!   runs inside that batch's transaction, in order, so requests in one
//!   batch see each other's holds exactly as if they had run one by one.
//! - Checkpoints, settles and health samples are queued and return at
//!   once; the writer applies them in the order they came. A process that
//!   dies with some of them queued leaves its holds behind, and the next
//!   Switchboard process settles those from their last checkpoint, as
//!   after any crash.
//! - Its connection commits with `synchronous = NORMAL` (no fsync per
//!   commit; in WAL mode a process crash loses nothing committed) and
//!   never checkpoints; a thread of its own checkpoints the log (which
//!   syncs it first) every [`SYNC_EVERY`] while there are writes, so a
//!   power cut loses at most that much of them and no commit waits on a
//!   disk flush.
//!
//! [`CachedHealth`] answers the router's health reads from memory (loaded
//! from the database and reloaded after [`HEALTH_TTL`], so other
//! processes' samples and cooldowns are seen within that time), because
//! the router reads health several times per request on async threads.
//! Inside a tokio runtime an expired target is reloaded once, on a
//! blocking thread, while reads go on answering from what it held: a
//! database read on an async thread, by every request running when the
//! time ran out, was a latency spike once a second under load.
//!
//! Both tell the router that they only queue writes
//! ([`BudgetGate::queues_writes`], [`HealthStore::queues_writes`]), so it
//! calls them on its own thread, and a reservation is awaited
//! ([`BudgetGate::reserve_queued`]) rather than blocking a thread.
//!
//! Every queued write is applied before [`BatchWriter`]'s last clone is
//! dropped (or on [`BatchWriter::flush`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::health::{KEEP_SAMPLES, record_in, set_cooldown_in, trim_in};
use super::ledger::{
    DEFAULT_HOLD, checkpoint_in, reserve_in, settle_in, sweep_in, unbounded_denial,
};
use super::time::now_ms;
use super::tokens::touch_token;
use super::{Store, StoreError, db};
use crate::chat::AttemptResult;
use crate::config::Budget;
use crate::hooks::{
    BudgetDenied, BudgetGate, CooldownState, HealthSample, HealthStore, PendingReservation,
    Reservation, SettledCost, SpendContext,
};
use crate::money::Cost;

/// The most writes applied in one transaction.
pub const MAX_BATCH: usize = 512;

/// How often the write-ahead log is synced (and checkpointed) while there
/// are writes.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);

/// How long health read from the database is trusted before it is read
/// again (to see other processes' samples and cooldowns).
pub const HEALTH_TTL: Duration = Duration::from_secs(1);

/// One queued write.
enum Op {
    Reserve {
        ctx: SpendContext,
        estimate: Option<Cost>,
        budgets: Arc<[Budget]>,
        reply: oneshot::Sender<Result<Reservation, BudgetDenied>>,
    },
    Checkpoint {
        reservation: Reservation,
        progress: Box<AttemptResult>,
        at: i64,
    },
    Settle {
        reservation: Reservation,
        actual: Option<SettledCost>,
        at: i64,
    },
    Sample {
        provider: String,
        model: String,
        sample: HealthSample,
    },
    Cooldown {
        provider: String,
        model: String,
        state: CooldownState,
    },
    Touch {
        token: i64,
        at: i64,
    },
    Flush {
        reply: mpsc::SyncSender<()>,
    },
}

/// The writer thread, shared by every [`BatchedGate`] and
/// [`CachedHealth`] made from it. Cheap to clone; the thread ends (after
/// applying everything queued) when the last clone is dropped.
#[derive(Clone)]
pub struct BatchWriter {
    inner: Arc<WriterInner>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

struct WriterInner {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    stop_sync: Option<mpsc::Sender<()>>,
    store: Store,
}

impl Drop for WriterInner {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue is applied.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stop_sync = None;
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// Start a batch writer on this database (a connection and two
    /// threads of its own).
    pub fn batch_writer(&self) -> Result<BatchWriter, StoreError> {
        let conn = db::open_batch_writer(self.path())?;
        let (tx, rx) = mpsc::channel();
        let dirty = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            conn,
            owner: self.owner_id().map(str::to_owned),
            hold: DEFAULT_HOLD,
            retry: Vec::new(),
            dirty: Arc::clone(&dirty),
        };
        let thread = std::thread::Builder::new()
            .name("switchboard-batch-writer".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| StoreError::invalid(format!("cannot start the ledger writer: {e}")))?;
        let (stop_sync, stopped) = mpsc::channel::<()>();
        let checkpointer = db::open_batch_writer(self.path())?;
        let syncer = std::thread::Builder::new()
            .name("switchboard-wal-sync".into())
            .spawn(move || sync_loop(&checkpointer, &dirty, &stopped))
            .ok();
        Ok(BatchWriter {
            inner: Arc::new(WriterInner {
                tx: Some(tx),
                thread: Some(thread),
                syncer,
                stop_sync: Some(stop_sync),
                store: self.clone(),
            }),
        })
    }
}

impl BatchWriter {
    /// Queue `op`; it comes back when no writer thread runs.
    fn send(&self, op: Op) -> Result<(), Box<Op>> {
        match &self.inner.tx {
            Some(tx) => tx.send(op).map_err(|e| Box::new(e.0)),
            None => Err(Box::new(op)),
        }
    }

    /// A budget gate enforcing `budgets` through this writer.
    pub fn gate(&self, budgets: Vec<Budget>) -> BatchedGate {
        BatchedGate {
            writer: self.clone(),
            budgets: budgets.into(),
        }
    }

    /// Health kept through this writer, read from memory.
    pub fn health(&self) -> CachedHealth {
        CachedHealth {
            writer: self.clone(),
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Note that client token `id` was used now (see
    /// [`Store::create_token`]).
    pub fn touch_token(&self, id: i64) {
        let _ = self.send(Op::Touch {
            token: id,
            at: now_ms(),
        });
    }

    /// Wait until every write queued before this call is committed.
    pub fn flush(&self) {
        let (reply, done) = mpsc::sync_channel(1);
        if self.send(Op::Flush { reply }).is_ok() {
            let _ = done.recv();
        }
    }

    /// The database it writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// Checkpoint the write-ahead log every [`SYNC_EVERY`] while the writer
/// has committed since the last time (and once more at the end). A
/// passive checkpoint syncs the log, copies what no reader still needs
/// into the database and syncs that, without blocking the writer.
fn sync_loop(conn: &Connection, dirty: &AtomicBool, stop: &mpsc::Receiver<()>) {
    loop {
        let ended = matches!(
            stop.recv_timeout(SYNC_EVERY),
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(())
        );
        if dirty.swap(false, Ordering::AcqRel) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
        if ended {
            return;
        }
    }
}

/// The thread's state.
struct Writer {
    conn: Connection,
    owner: Option<String>,
    hold: Duration,
    /// Settles whose batch failed, written with the next one.
    retry: Vec<Op>,
    dirty: Arc<AtomicBool>,
}

/// What a batch owes its callers once it is committed.
enum Reply {
    Reserved(Box<Reserved>),
    Flushed(mpsc::SyncSender<()>),
}

/// A reservation's answer: where it goes, what it is once committed, and
/// what it becomes if the commit fails.
struct Reserved {
    to: oneshot::Sender<Result<Reservation, BudgetDenied>>,
    decided: Result<Reservation, BudgetDenied>,
    fallback: Fallback,
}

/// What a reserve answers when its batch cannot be written.
struct Fallback {
    ctx: SpendContext,
    estimate: Option<Cost>,
    budgets: Arc<[Budget]>,
}

impl Fallback {
    /// As the per-call gate does: a hard stop that cannot be checked does
    /// not let money through; without one, go ahead with no recorded hold.
    fn answer(&self, why: &str) -> Result<Reservation, BudgetDenied> {
        match self
            .budgets
            .iter()
            .find(|b| b.hard && b.scope.matches(&self.ctx))
        {
            Some(b) => Err(BudgetDenied {
                budget: b.name.clone(),
                message: format!("the spend ledger could not be checked: {why}"),
            }),
            None => Ok(Reservation {
                id: 0,
                amount: self.estimate.unwrap_or(Cost::ZERO),
                context: self.ctx.clone(),
            }),
        }
    }
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut batch = std::mem::take(&mut self.retry);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.apply(batch);
        }
        // The channel is closed: one last try for settles that failed.
        let left = std::mem::take(&mut self.retry);
        if !left.is_empty() {
            self.apply(left);
        }
    }

    fn apply(&mut self, batch: Vec<Op>) {
        let now = now_ms();
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let why = e.to_string();
                for op in batch {
                    fail(op, &why, &mut self.retry);
                }
                return;
            }
        };
        let mut replies = Vec::new();
        // Ops to retry if the commit fails (settles), or to answer then.
        let mut undone: Vec<Op> = Vec::new();
        let mut sampled: HashSet<(String, String)> = HashSet::new();
        // A checkpoint of a hold this batch also settles would be deleted
        // with it: not written at all.
        let settled: HashSet<u64> = batch
            .iter()
            .filter_map(|op| match op {
                Op::Settle { reservation, .. } if reservation.id != 0 => Some(reservation.id),
                _ => None,
            })
            .collect();
        if batch.iter().any(|op| matches!(op, Op::Reserve { .. })) {
            let _ = sweep_in(&tx, now);
        }
        for op in batch {
            match op {
                Op::Reserve {
                    ctx,
                    estimate,
                    budgets,
                    reply,
                } => {
                    let decided = match in_savepoint(&tx, |sp| {
                        reserve_in(
                            sp,
                            &budgets,
                            &ctx,
                            estimate,
                            now,
                            self.hold,
                            self.owner.as_deref(),
                        )
                    }) {
                        Ok(d) => d,
                        Err(e) => Fallback {
                            ctx: ctx.clone(),
                            estimate,
                            budgets: Arc::clone(&budgets),
                        }
                        .answer(&e.to_string()),
                    };
                    replies.push(Reply::Reserved(Box::new(Reserved {
                        to: reply,
                        decided,
                        fallback: Fallback {
                            ctx,
                            estimate,
                            budgets,
                        },
                    })));
                }
                Op::Checkpoint { reservation, .. } if settled.contains(&reservation.id) => {}
                Op::Checkpoint {
                    reservation,
                    progress,
                    at,
                } => {
                    // A checkpoint that cannot be written is superseded by
                    // the next one (or the settle).
                    let _ = in_savepoint(&tx, |sp| {
                        checkpoint_in(
                            sp,
                            &reservation,
                            &progress,
                            at,
                            self.hold,
                            self.owner.as_deref(),
                        )
                    });
                }
                Op::Settle {
                    reservation,
                    actual,
                    at,
                } => {
                    let written =
                        in_savepoint(&tx, |sp| settle_in(sp, &reservation, actual.as_ref(), at));
                    let op = Op::Settle {
                        reservation,
                        actual,
                        at,
                    };
                    match written {
                        Ok(()) => undone.push(op),
                        Err(_) => self.retry.push(op),
                    }
                }
                Op::Sample {
                    provider,
                    model,
                    sample,
                } => {
                    // Health is advice: a sample that cannot be written is lost.
                    if record_in(&tx, &provider, &model, &sample).is_ok() {
                        sampled.insert((provider, model));
                    }
                }
                Op::Cooldown {
                    provider,
                    model,
                    state,
                } => {
                    let _ = set_cooldown_in(&tx, &provider, &model, state);
                }
                Op::Touch { token, at } => {
                    let _ = touch_token(&tx, token, at);
                }
                Op::Flush { reply } => replies.push(Reply::Flushed(reply)),
            }
        }
        for (provider, model) in &sampled {
            let _ = trim_in(&tx, provider, model);
        }
        match tx.commit() {
            Ok(()) => {
                self.dirty.store(true, Ordering::Release);
                for r in replies {
                    match r {
                        Reply::Reserved(r) => {
                            let _ = r.to.send(r.decided);
                        }
                        Reply::Flushed(to) => {
                            let _ = to.send(());
                        }
                    }
                }
            }
            Err(e) => {
                let why = e.to_string();
                self.retry.extend(undone);
                for r in replies {
                    match r {
                        Reply::Reserved(r) => {
                            let _ = r.to.send(r.fallback.answer(&why));
                        }
                        Reply::Flushed(to) => {
                            let _ = to.send(());
                        }
                    }
                }
            }
        }
    }
}

/// Run `f` in a savepoint of `tx`: its writes are kept when it succeeds
/// and undone when it fails, without undoing the rest of the batch.
fn in_savepoint<T>(
    tx: &rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.prepare_cached("SAVEPOINT op")?.execute([])?;
    match f(tx) {
        Ok(v) => {
            tx.prepare_cached("RELEASE op")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx
                .prepare_cached("ROLLBACK TO op")
                .and_then(|mut s| s.execute([]));
            let _ = tx
                .prepare_cached("RELEASE op")
                .and_then(|mut s| s.execute([]));
            Err(e)
        }
    }
}

/// Answer an op whose batch could not even begin.
fn fail(op: Op, why: &str, retry: &mut Vec<Op>) {
    match op {
        Op::Reserve {
            ctx,
            estimate,
            budgets,
            reply,
        } => {
            let _ = reply.send(
                Fallback {
                    ctx,
                    estimate,
                    budgets,
                }
                .answer(why),
            );
        }
        Op::Settle { .. } => retry.push(op),
        Op::Flush { reply } => {
            let _ = reply.send(());
        }
        Op::Checkpoint { .. } | Op::Sample { .. } | Op::Cooldown { .. } | Op::Touch { .. } => {}
    }
}

/// The [`BudgetGate`] over a [`BatchWriter`]: the budgets of one
/// configuration, enforced in the writer's batches.
#[derive(Debug, Clone)]
pub struct BatchedGate {
    writer: BatchWriter,
    budgets: Arc<[Budget]>,
}

impl BatchedGate {
    /// The budgets it enforces (hard) or watches (warn-only).
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }
}

impl BatchedGate {
    fn queue_reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<PendingReservation, Box<Result<Reservation, BudgetDenied>>> {
        if let Some(denied) = unbounded_denial(&self.budgets, ctx, estimate) {
            return Err(Box::new(Err(denied)));
        }
        let (reply, answer) = oneshot::channel();
        let op = Op::Reserve {
            ctx: ctx.clone(),
            estimate,
            budgets: Arc::clone(&self.budgets),
            reply,
        };
        match self.writer.send(op) {
            Ok(()) => Ok(answer),
            Err(_) => Err(Box::new(self.fallback(ctx, estimate))),
        }
    }

    fn fallback(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        Fallback {
            ctx: ctx.clone(),
            estimate,
            budgets: Arc::clone(&self.budgets),
        }
        .answer("the ledger writer has stopped")
    }
}

impl BudgetGate for BatchedGate {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        match self.queue_reserve(ctx, estimate) {
            Ok(answer) => answer
                .blocking_recv()
                .unwrap_or_else(|_| self.fallback(ctx, estimate)),
            Err(decided) => *decided,
        }
    }

    fn reserve_queued(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Option<PendingReservation> {
        Some(match self.queue_reserve(ctx, estimate) {
            Ok(answer) => answer,
            Err(decided) => {
                let (reply, answer) = oneshot::channel();
                let _ = reply.send(*decided);
                answer
            }
        })
    }

    fn queues_writes(&self) -> bool {
        true
    }

    fn checkpoint(&self, reservation: &Reservation, progress: &AttemptResult) {
        let _ = self.writer.send(Op::Checkpoint {
            reservation: reservation.clone(),
            progress: Box::new(progress.clone()),
            at: now_ms(),
        });
    }

    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        let op = Op::Settle {
            reservation,
            actual,
            at: now_ms(),
        };
        if let Err(returned) = self.writer.send(op)
            && let Op::Settle {
                reservation,
                actual,
                at,
            } = *returned
        {
            // No writer thread (it could not keep running): write it here.
            let mut conn = self.writer.store().conn();
            if let Ok(tx) = conn.transaction_with_behavior(TransactionBehavior::Immediate)
                && settle_in(&tx, &reservation, actual.as_ref(), at).is_ok()
            {
                let _ = tx.commit();
            }
        }
    }
}

/// One target's health, as last read plus what this process wrote since.
#[derive(Debug, Clone)]
struct CachedTarget {
    loaded: Instant,
    /// Newest first, at most [`KEEP_SAMPLES`].
    samples: VecDeque<HealthSample>,
    cooldown: CooldownState,
    /// A reload of it is under way in the background.
    reloading: bool,
}

type HealthCache = Arc<Mutex<HashMap<(String, String), CachedTarget>>>;

/// The [`HealthStore`] over a [`BatchWriter`]: writes are queued, reads
/// come from memory (see the module docs).
#[derive(Debug)]
pub struct CachedHealth {
    writer: BatchWriter,
    cache: HealthCache,
}

/// One target's health as the database has it now.
fn load_target(store: &Store, provider: &str, model: &str) -> CachedTarget {
    let db = super::SqliteHealth::new(store.clone());
    CachedTarget {
        loaded: Instant::now(),
        samples: db.recent(provider, model, KEEP_SAMPLES).into(),
        cooldown: db.cooldown(provider, model),
        reloading: false,
    }
}

impl CachedHealth {
    fn with_target<T>(
        &self,
        provider: &str,
        model: &str,
        read: impl FnOnce(&CachedTarget) -> T,
    ) -> T {
        let key = (provider.to_owned(), model.to_owned());
        if let Ok(mut cache) = self.cache.lock()
            && let Some(t) = cache.get_mut(&key)
        {
            if t.loaded.elapsed() < HEALTH_TTL {
                return read(t);
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                if !t.reloading {
                    t.reloading = true;
                    let (cache, store) = (Arc::clone(&self.cache), self.writer.store().clone());
                    let key = key.clone();
                    runtime.spawn_blocking(move || {
                        let loaded = load_target(&store, &key.0, &key.1);
                        if let Ok(mut cache) = cache.lock() {
                            cache.insert(key, loaded);
                        }
                    });
                }
                return read(t);
            }
        }
        // Read outside the lock: other targets' reads need not wait.
        let loaded = load_target(self.writer.store(), provider, model);
        let answer = read(&loaded);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, loaded);
        }
        answer
    }

    fn update(&self, provider: &str, model: &str, change: impl FnOnce(&mut CachedTarget)) {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(t) = cache.get_mut(&(provider.to_owned(), model.to_owned()))
        {
            change(t);
        }
    }
}

impl HealthStore for CachedHealth {
    fn record(&self, provider: &str, model: &str, sample: &HealthSample) {
        self.update(provider, model, |t| {
            t.samples.push_front(sample.clone());
            t.samples.truncate(KEEP_SAMPLES);
        });
        let _ = self.writer.send(Op::Sample {
            provider: provider.to_owned(),
            model: model.to_owned(),
            sample: sample.clone(),
        });
    }

    fn recent(&self, provider: &str, model: &str, limit: usize) -> Vec<HealthSample> {
        self.with_target(provider, model, |t| {
            t.samples.iter().take(limit).cloned().collect()
        })
    }

    fn cooldown(&self, provider: &str, model: &str) -> CooldownState {
        self.with_target(provider, model, |t| t.cooldown)
    }

    fn queues_writes(&self) -> bool {
        true
    }

    fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState) {
        let mut unchanged = false;
        self.update(provider, model, |t| {
            unchanged = t.cooldown == state;
            t.cooldown = state;
        });
        // A success after a success changes nothing: no write.
        if !unchanged {
            let _ = self.writer.send(Op::Cooldown {
                provider: provider.to_owned(),
                model: model.to_owned(),
                state,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BudgetPeriod, BudgetScope};
    use crate::store::SpendGrouping;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_at(&dir.path().join("db.sqlite3")).unwrap();
        (dir, store)
    }

    fn ctx(tag: &str) -> SpendContext {
        SpendContext {
            provider: "p".into(),
            model: "m".into(),
            tags: vec![tag.into()],
            ..SpendContext::default()
        }
    }

    fn usd(s: &str) -> Cost {
        Cost::from_usd(s).unwrap()
    }

    fn settled(cost: &str) -> Option<SettledCost> {
        Some(SettledCost {
            cost: Some(usd(cost)),
            estimated: false,
            input_tokens: Some(10),
            output_tokens: Some(5),
        })
    }

    #[test]
    fn concurrent_reserves_in_batches_never_pass_a_hard_budget_together() {
        let (_dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let gate = Arc::new(writer.gate(vec![Budget {
            name: "tools".into(),
            scope: BudgetScope::Tag("t".into()),
            period: BudgetPeriod::Daily,
            limit: usd("1.00"),
            warn_at_bp: 8000,
            hard: true,
        }]));
        // 40 threads each want 0.10 at once: exactly ten fit.
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || gate.reserve(&ctx("t"), Some(usd("0.10"))))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let held: Vec<Reservation> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(held.len(), 10);
        let refused = results.iter().find_map(|r| r.clone().err()).unwrap();
        assert_eq!(refused.budget, "tools");
        // Other tags are not counted by it.
        assert!(gate.reserve(&ctx("other"), Some(usd("5"))).is_ok());
        // Settled at what they cost: the ledger has every one, tagged.
        for r in held {
            gate.settle(r, settled("0.05"));
        }
        writer.flush();
        let by_tag = store.spend(SpendGrouping::Tag, None).unwrap();
        let t = by_tag
            .iter()
            .find(|g| g.key.as_deref() == Some("t"))
            .unwrap();
        assert_eq!((t.requests, t.cost), (10, usd("0.50")));
        // Room again for ten more at 0.05 each.
        let again: Vec<_> = (0..10)
            .map(|_| gate.reserve(&ctx("t"), Some(usd("0.05"))))
            .collect();
        assert!(again.iter().all(Result::is_ok));
        assert!(gate.reserve(&ctx("t"), Some(usd("0.05"))).is_err());
    }

    #[test]
    fn dropping_the_writer_applies_what_is_queued_and_holds_survive_a_crash() {
        let (dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let gate = writer.gate(Vec::new());
        let hold = gate.reserve(&ctx("x"), Some(usd("0.2"))).unwrap();
        assert_ne!(hold.id, 0, "the hold is a committed row before the send");
        let count = |sql: &str| -> i64 {
            let c = Connection::open(dir.path().join("db.sqlite3")).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count("SELECT count(*) FROM reservations"), 1);
        // Sent (so billed if it never ends), as the router checkpoints it.
        let mut sent = crate::attempt::Accumulator::new("p", "m");
        sent.mark_sent();
        gate.checkpoint(&hold, &sent.progress(Duration::ZERO, None, 40));
        let second = gate.reserve(&ctx("x"), Some(usd("0.2"))).unwrap();
        gate.settle(second, settled("0.01"));
        let health = writer.health();
        health.record(
            "p",
            "m",
            &HealthSample {
                at_unix_ms: 1,
                ok: true,
                error_kind: None,
                ttft_ms: Some(5.0),
                tokens_per_s: None,
            },
        );
        drop(health);
        drop(gate);
        drop(writer);
        assert_eq!(count("SELECT count(*) FROM ledger"), 1);
        assert_eq!(count("SELECT count(*) FROM health_samples"), 1);
        // The first hold was never settled: the store bills it when it
        // closes, as recovery would after a crash.
        drop(store);
        assert_eq!(count("SELECT count(*) FROM reservations"), 0);
        assert_eq!(count("SELECT count(*) FROM ledger"), 2);
    }

    #[test]
    fn health_reads_come_from_memory_and_see_other_writers_after_the_ttl() {
        let (_dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let health = writer.health();
        let state = CooldownState {
            consecutive_failures: 3,
            until_unix_ms: Some(99),
            level: 1,
        };
        assert_eq!(health.cooldown("p", "m"), CooldownState::default());
        health.set_cooldown("p", "m", state);
        assert_eq!(health.cooldown("p", "m"), state, "seen at once");
        writer.flush();
        // Another process (here: the plain store) resets it.
        store
            .health()
            .set_cooldown("p", "m", CooldownState::default());
        assert_eq!(health.cooldown("p", "m"), state, "cached");
        std::thread::sleep(HEALTH_TTL + Duration::from_millis(50));
        assert_eq!(health.cooldown("p", "m"), CooldownState::default());
    }

    #[test]
    fn in_a_runtime_an_expired_target_is_reloaded_in_the_background_once() {
        let (_dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let health = writer.health();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _entered = rt.enter();
        let state = CooldownState {
            consecutive_failures: 2,
            until_unix_ms: Some(7),
            level: 1,
        };
        assert_eq!(health.cooldown("p", "m"), CooldownState::default());
        // Another process sets a cooldown.
        store.health().set_cooldown("p", "m", state);
        std::thread::sleep(HEALTH_TTL + Duration::from_millis(50));
        // The first read after the time runs out answers at once from
        // memory, and the reload it started brings the other process's
        // state soon after.
        assert_eq!(health.cooldown("p", "m"), CooldownState::default());
        let deadline = Instant::now() + Duration::from_secs(5);
        while health.cooldown("p", "m") != state {
            assert!(Instant::now() < deadline, "never reloaded");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
