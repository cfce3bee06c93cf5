//! Group commit for request rates in the thousands per second (the Local
//! API): the same ledger, holds, checkpoints and health rows as
//! [`SqliteBudgetGate`](super::SqliteBudgetGate) and
//! [`SqliteHealth`](super::SqliteHealth) write, written by one thread in
//! one transaction per batch instead of one transaction each.
//!
//! What a request waits for, and what it does not:
//! - **No hard budget covers the attempt** (the common case): its hold is
//!   decided at once in memory (nothing can refuse it) and the request goes
//!   upstream without waiting for any disk write. The hold row is queued
//!   and written by the writer thread concurrently with the upstream
//!   request. [`BatchWriter::queued`] and [`BatchWriter::written`] let a
//!   caller wait until it is committed: the Local API waits, before the
//!   first byte of any response, for the hold and the checkpoint that
//!   marks the attempt sent, so **every request whose client received a
//!   byte has a committed hold (billed if the process dies) or ledger
//!   row**, and crash recovery finds it after a kill. A process killed
//!   after an attempt was sent but before its hold committed (the writer's
//!   next batch, normally well under a millisecond after the send) leaves
//!   no record of it; no response had begun. A hold and the settle of the same attempt that land in one
//!   batch are written as the ledger row alone (one transaction: a crash
//!   keeps both or neither).
//! - **A hard budget covers it**: the budget check needs every other
//!   process's holds, so it runs inside a batch's transaction, in queue
//!   order, and the attempt waits for that batch to commit before it is
//!   sent: requests in one batch see each other's holds exactly as if they
//!   had run one by one, and two processes can never both pass a budget
//!   that has room for one. Holds decided in memory are never of a hard
//!   budget, so they cannot make a hard budget's check wrong.
//! - Checkpoints, settles, health samples and token touches are queued
//!   and return at once without waking the writer: they go with the next
//!   batch, which the caller triggers with [`BatchWriter::kick`] once its
//!   response is out (the Local API does so when a response body is done),
//!   so a stream's last bytes and `[DONE]` reach the client before the
//!   settle's commit competes with them. A request's hold is always queued
//!   before its settle, and the writer applies the queue in order, so each
//!   ended attempt settles exactly once. If nothing kicks, the log syncer
//!   wakes the writer within [`SYNC_EVERY`].
//! - A process that dies with writes queued leaves its committed holds
//!   behind, and the next Switchboard process settles those from their
//!   last checkpoint, as after any crash.
//! - Its connection commits with `synchronous = NORMAL` (no fsync per
//!   commit; in WAL mode a process crash loses nothing committed) and
//!   never checkpoints; a thread of its own checkpoints the log (which
//!   syncs it first) every [`SYNC_EVERY`] while there are writes, so a
//!   power cut loses at most that much of them and no commit waits on a
//!   disk flush.
//! - If the writer thread is gone (it cannot keep running), a settle is
//!   written on a blocking thread, never on the async thread that called
//!   it, and one that cannot be written is kept and retried with the next
//!   one and when the writer is dropped.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{oneshot, watch};

use super::health::{KEEP_SAMPLES, record_in, set_cooldown_in, trim_in};
use super::ledger::{
    DEFAULT_HOLD, checkpoint_row_in, hard_budgets, insert_hold, reserve_in, settle_in,
    settle_row_in, sweep_in, unbounded_denial, unchecked_reservation,
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
use crate::routing::{HEALTH_WINDOW, HealthStats};

/// The most writes applied in one transaction.
pub const MAX_BATCH: usize = 512;

/// How often the write-ahead log is synced (and checkpointed) while there
/// are writes; also the longest a queued write waits when nothing wakes
/// the writer.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);

/// A target's old health samples are deleted once this many were written
/// since the last time (so a table holds at most [`KEEP_SAMPLES`] plus
/// this many per target): finding the oldest to keep walks
/// [`KEEP_SAMPLES`] index entries, which cost more than the rest of a
/// request's ledger writes when it ran for every batch.
pub const TRIM_EVERY: usize = 64;

/// How long health read from the database is trusted before it is read
/// again (to see other processes' samples and cooldowns).
pub const HEALTH_TTL: Duration = Duration::from_secs(1);

/// Ids of holds decided in memory ([`Op::Hold`]) have this bit set, so
/// they never collide with database row ids; the writer maps them to the
/// rows it writes.
const IN_MEMORY: u64 = 1 << 62;

/// One queued write.
enum Op {
    /// A hold a hard budget must check, decided in the batch.
    Reserve {
        ctx: SpendContext,
        estimate: Option<Cost>,
        budgets: Arc<[Budget]>,
        reply: oneshot::Sender<Result<Reservation, BudgetDenied>>,
    },
    /// A hold decided in memory (no hard budget covers it): only written.
    Hold {
        id: u64,
        ctx: SpendContext,
        amount: Cost,
        at: i64,
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

impl Op {
    /// Someone waits for it: the writer is woken for it. The others go
    /// with the next batch (see the module docs).
    fn is_urgent(&self) -> bool {
        match self {
            Op::Reserve { .. } | Op::Hold { .. } | Op::Flush { .. } => true,
            Op::Checkpoint { .. }
            | Op::Settle { .. }
            | Op::Sample { .. }
            | Op::Cooldown { .. }
            | Op::Touch { .. } => false,
        }
    }
}

/// The queue between every caller and the writer thread.
#[derive(Default)]
struct Queue {
    ops: VecDeque<Op>,
    /// Ops ever queued: the sequence number of the newest.
    queued: u64,
    /// The writer sleeps, waiting to be woken.
    idle: bool,
    /// No more ops will come (the last [`BatchWriter`] is gone).
    closed: bool,
    /// The writer thread has ended: nothing queued would be applied.
    ended: bool,
}

/// What callers and the writer thread share.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Ops taken off the queue and applied (committed, or given up on), in
    /// queue order; `u64::MAX` once the writer has ended.
    written: watch::Sender<u64>,
    /// In-memory hold id → its row, once written (the writer fills it; a
    /// settle written without the writer reads it).
    rows: Mutex<HashMap<u64, i64>>,
    /// Settles that could not go through the writer and could not be
    /// written yet.
    orphans: Mutex<Vec<Orphan>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wake the writer if it sleeps with something queued.
    fn kick(&self) {
        let mut q = self.lock();
        if q.idle && !q.ops.is_empty() {
            q.idle = false;
            drop(q);
            self.wake.notify_one();
        }
    }
}

/// A settle written without the writer thread.
struct Orphan {
    reservation: Reservation,
    actual: Option<SettledCost>,
    at: i64,
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
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    stop_sync: Option<mpsc::Sender<()>>,
    store: Store,
    /// Source of in-memory hold ids.
    next_hold: AtomicU64,
}

impl Drop for WriterInner {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the queue is applied.
        {
            let mut q = self.shared.lock();
            q.closed = true;
            q.idle = false;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stop_sync = None;
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        // Last try for settles the writer never took.
        write_orphans(&self.store, &self.shared);
    }
}

impl Store {
    /// Start a batch writer on this database (a connection and two
    /// threads of its own).
    pub fn batch_writer(&self) -> Result<BatchWriter, StoreError> {
        let conn = db::open_batch_writer(self.path())?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            written: watch::Sender::new(0),
            rows: Mutex::new(HashMap::new()),
            orphans: Mutex::new(Vec::new()),
        });
        let dirty = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            conn,
            owner: self.owner_id().map(str::to_owned),
            hold: DEFAULT_HOLD,
            retry: Vec::new(),
            dirty: Arc::clone(&dirty),
            shared: Arc::clone(&shared),
            untrimmed: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("switchboard-batch-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::invalid(format!("cannot start the ledger writer: {e}")))?;
        let (stop_sync, stopped) = mpsc::channel::<()>();
        let checkpointer = db::open_batch_writer(self.path())?;
        let kicks = Arc::clone(&shared);
        let syncer = std::thread::Builder::new()
            .name("switchboard-wal-sync".into())
            .spawn(move || sync_loop(&checkpointer, &dirty, &kicks, &stopped))
            .ok();
        Ok(BatchWriter {
            inner: Arc::new(WriterInner {
                shared,
                thread: Some(thread),
                syncer,
                stop_sync: Some(stop_sync),
                store: self.clone(),
                next_hold: AtomicU64::new(1),
            }),
        })
    }
}

impl BatchWriter {
    /// Queue `op` (waking the writer for an urgent one); it comes back
    /// when no writer thread runs.
    fn send(&self, op: Op) -> Result<(), Box<Op>> {
        let shared = &self.inner.shared;
        let mut q = shared.lock();
        if q.closed || q.ended {
            return Err(Box::new(op));
        }
        let wake = q.idle && op.is_urgent();
        q.ops.push_back(op);
        q.queued += 1;
        if wake {
            q.idle = false;
        }
        drop(q);
        if wake {
            shared.wake.notify_one();
        }
        Ok(())
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

    /// How many writes were ever queued: pass it to
    /// [`BatchWriter::written`] to wait for everything queued so far.
    pub fn queued(&self) -> u64 {
        self.inner.shared.lock().queued
    }

    /// Wait (without blocking a thread) until the first `seq` writes ever
    /// queued are applied; at once when they are, or when the writer has
    /// ended. Wakes the writer if it sleeps with them queued.
    pub async fn written(&self, seq: u64) {
        let mut done = self.inner.shared.written.subscribe();
        if *done.borrow() >= seq {
            return;
        }
        self.kick();
        let _ = done.wait_for(|n| *n >= seq).await;
    }

    /// Write what is queued now instead of with the next batch: call it
    /// when a response is out (see the module docs).
    pub fn kick(&self) {
        self.inner.shared.kick();
    }

    /// The database it writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// A settle the writer thread cannot take: written on a blocking
    /// thread (never on an async one), kept and retried if it fails.
    fn orphan(&self, o: Orphan) {
        let shared = &self.inner.shared;
        if let Ok(mut orphans) = shared.orphans.lock() {
            orphans.push(o);
        }
        let (store, shared) = (self.inner.store.clone(), Arc::clone(shared));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || write_orphans(&store, &shared));
            }
            Err(_) => write_orphans(&store, &shared),
        }
    }

    /// Wait until the writer thread has taken every write queued so far
    /// (it may still be applying them).
    #[cfg(test)]
    fn wait_taken(&self) {
        self.kick();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.inner.shared.lock().ops.is_empty() {
            assert!(Instant::now() < deadline, "the writer took nothing");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// End the writer thread as if it had failed (for tests of the paths
    /// without it).
    #[cfg(test)]
    fn end_thread(&self) {
        {
            let mut q = self.inner.shared.lock();
            q.closed = true;
            q.idle = false;
        }
        self.inner.shared.wake.notify_one();
        while !self.inner.shared.lock().ended {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Write the settles that could not go through the writer, in one
/// transaction; kept for the next try if it fails.
fn write_orphans(store: &Store, shared: &Shared) {
    let Ok(mut orphans) = shared.orphans.lock() else {
        return;
    };
    if orphans.is_empty() {
        return;
    }
    let rows = shared.rows.lock().map(|r| r.clone()).unwrap_or_default();
    let mut conn = store.conn();
    let Ok(tx) = conn.transaction_with_behavior(TransactionBehavior::Immediate) else {
        return;
    };
    for o in orphans.iter() {
        let mut reservation = o.reservation.clone();
        reservation.id = row_of(&rows, reservation.id);
        if settle_in(&tx, &reservation, o.actual.as_ref(), o.at).is_err() {
            return;
        }
    }
    if tx.commit().is_ok() {
        orphans.clear();
    }
}

/// The row of hold `id`: itself for a row id, the written row (or none: 0)
/// for an in-memory one.
fn row_of(rows: &HashMap<u64, i64>, id: u64) -> u64 {
    if id & IN_MEMORY == 0 {
        return id;
    }
    rows.get(&id)
        .and_then(|r| u64::try_from(*r).ok())
        .unwrap_or(0)
}

/// Checkpoint the write-ahead log every [`SYNC_EVERY`] while the writer
/// has committed since the last time (and once more at the end). A
/// passive checkpoint syncs the log, copies what no reader still needs
/// into the database and syncs that, without blocking the writer. Each
/// round also wakes the writer if writes wait that nothing woke it for.
fn sync_loop(conn: &Connection, dirty: &AtomicBool, shared: &Shared, stop: &mpsc::Receiver<()>) {
    loop {
        let ended = matches!(
            stop.recv_timeout(SYNC_EVERY),
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(())
        );
        shared.kick();
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
    /// Settles (and holds) whose batch failed, written with the next one.
    retry: Vec<Op>,
    dirty: Arc<AtomicBool>,
    shared: Arc<Shared>,
    /// Health samples written per target since its last trim.
    untrimmed: HashMap<(String, String), usize>,
}

impl Writer {
    fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        loop {
            let taken: Vec<Op> = {
                let mut q = shared.lock();
                while q.ops.is_empty() && !q.closed {
                    q.idle = true;
                    q = shared
                        .wake
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                q.idle = false;
                if q.ops.is_empty() {
                    break;
                }
                let n = q.ops.len().min(MAX_BATCH);
                q.ops.drain(..n).collect()
            };
            let count = taken.len() as u64;
            let mut batch = std::mem::take(&mut self.retry);
            batch.extend(taken);
            self.apply(batch);
            shared.written.send_modify(|n| *n += count);
        }
        // The queue is closed: one last try for settles that failed.
        let left = std::mem::take(&mut self.retry);
        if !left.is_empty() {
            self.apply(left);
        }
        // Settles that still failed go where a settle without the writer
        // goes (written when the last writer handle is dropped).
        if let Ok(mut orphans) = shared.orphans.lock() {
            for op in std::mem::take(&mut self.retry) {
                if let Op::Settle {
                    reservation,
                    actual,
                    at,
                } = op
                {
                    orphans.push(Orphan {
                        reservation,
                        actual,
                        at,
                    });
                }
            }
        }
        shared.lock().ended = true;
        shared.written.send_replace(u64::MAX);
    }

    fn apply(&mut self, batch: Vec<Op>) {
        let mut rows = self
            .shared
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = Batch {
            ops: &batch,
            // A checkpoint of a hold this batch also settles would be
            // deleted with it: not written at all; nor is an in-memory
            // hold it settles.
            settled: batch
                .iter()
                .filter_map(|op| match op {
                    Op::Settle { reservation, .. } if reservation.id != 0 => Some(reservation.id),
                    _ => None,
                })
                .collect(),
            sweep: batch
                .iter()
                .any(|op| matches!(op, Op::Reserve { .. } | Op::Hold { .. })),
            now: now_ms(),
            hold: self.hold,
            owner: self.owner.as_deref(),
        };
        // Each write straight into the transaction (a savepoint around
        // every one cost about half of the writer's time); only when one
        // fails is the batch written again with a savepoint around each,
        // so that the one that fails is undone alone and the rest kept.
        let mut ended = write_pass(&mut self.conn, &mut self.untrimmed, &b, &mut rows, false);
        if matches!(ended, Ended::WriteFailed) {
            ended = write_pass(&mut self.conn, &mut self.untrimmed, &b, &mut rows, true);
        }
        let (outcomes, committed) = match ended {
            Ended::Done {
                outcomes,
                committed,
            } => (outcomes, committed),
            Ended::NotBegun(why) => (Vec::new(), Err(why)),
            // Not from an isolated pass.
            Ended::WriteFailed => (Vec::new(), Err("a write failed".to_owned())),
        };
        match committed {
            Ok(()) => {
                self.dirty.store(true, Ordering::Release);
                // A settled in-memory hold's row is gone; one whose settle
                // failed is still there for the settle's next try.
                for (op, outcome) in batch.iter().zip(&outcomes) {
                    if let Op::Settle { reservation, .. } = op
                        && reservation.id & IN_MEMORY != 0
                        && !matches!(outcome, Written::Failed)
                    {
                        rows.remove(&reservation.id);
                    }
                }
                drop(rows);
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    match (op, outcome) {
                        (Op::Reserve { reply, .. }, Written::Decided(decided)) => {
                            let _ = reply.send(decided);
                        }
                        (Op::Flush { reply }, _) => {
                            let _ = reply.send(());
                        }
                        (op @ Op::Settle { .. }, Written::Failed) => self.retry.push(op),
                        _ => {}
                    }
                }
            }
            Err(why) => {
                // Rolled back, or never begun: the holds it wrote are not
                // rows. They and its settles are written again first
                // thing next batch, in the order they came; reservations
                // get the answer of an unchecked ledger.
                let mut outcomes = outcomes.into_iter();
                for op in batch {
                    match (op, outcomes.next()) {
                        (op @ Op::Hold { id, .. }, Some(Written::Held)) => {
                            rows.remove(&id);
                            fail(op, &why, &mut self.retry);
                        }
                        // Settled with it, or not written: not a row to keep.
                        (Op::Hold { .. }, Some(_)) => {}
                        (op, _) => fail(op, &why, &mut self.retry),
                    }
                }
            }
        }
    }
}

/// A batch being written, and what its writes need.
struct Batch<'a> {
    ops: &'a [Op],
    /// The holds it settles.
    settled: HashSet<u64>,
    /// It takes holds: lapsed ones are swept first.
    sweep: bool,
    now: i64,
    hold: Duration,
    owner: Option<&'a str>,
}

/// What one op's write came to.
enum Written {
    /// Nothing to answer or keep.
    Nothing,
    /// A reservation a hard budget checked, decided.
    Decided(Result<Reservation, BudgetDenied>),
    /// An in-memory hold, written (its row is in the writer's map).
    Held,
    /// A health sample, written.
    Sampled,
    /// A settle that failed and was undone: tried again with the next batch.
    Failed,
}

/// How a pass over a batch ended.
enum Ended {
    /// The transaction could not begin.
    NotBegun(String),
    /// A write failed outside a savepoint: the transaction was rolled back.
    WriteFailed,
    /// Every op written (or, isolated, undone alone), then the commit.
    Done {
        outcomes: Vec<Written>,
        committed: Result<(), String>,
    },
}

/// Write batch `b` in one transaction of `conn`: with `isolate`, each
/// write in a savepoint of its own; without, the first write that fails
/// rolls the whole transaction back ([`Ended::WriteFailed`]). Fills `rows`
/// with the in-memory holds written (and takes them out again if the pass
/// fails).
fn write_pass(
    conn: &mut Connection,
    untrimmed: &mut HashMap<(String, String), usize>,
    b: &Batch<'_>,
    rows: &mut HashMap<u64, i64>,
    isolate: bool,
) -> Ended {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Ended::NotBegun(e.to_string()),
    };
    if b.sweep {
        let _ = sweep_in(&tx, b.now);
    }
    let mut outcomes = Vec::with_capacity(b.ops.len());
    for op in b.ops {
        match write_op(&tx, op, b, rows, isolate) {
            Some(outcome) => outcomes.push(outcome),
            None => {
                for (op, outcome) in b.ops.iter().zip(&outcomes) {
                    if let (Op::Hold { id, .. }, Written::Held) = (op, outcome) {
                        rows.remove(id);
                    }
                }
                // Dropping the transaction rolls it back.
                return Ended::WriteFailed;
            }
        }
    }
    for (op, outcome) in b.ops.iter().zip(&outcomes) {
        if let (
            Op::Sample {
                provider, model, ..
            },
            Written::Sampled,
        ) = (op, outcome)
        {
            *untrimmed
                .entry((provider.clone(), model.clone()))
                .or_default() += 1;
        }
    }
    for ((provider, model), written) in untrimmed.iter_mut() {
        if *written >= TRIM_EVERY && trim_in(&tx, provider, model).is_ok() {
            *written = 0;
        }
    }
    Ended::Done {
        outcomes,
        committed: tx.commit().map_err(|e| e.to_string()),
    }
}

/// Write one op of batch `b` into `tx` (see [`write_pass`]); `None` when
/// a write failed outside a savepoint.
fn write_op(
    tx: &Connection,
    op: &Op,
    b: &Batch<'_>,
    rows: &mut HashMap<u64, i64>,
    isolate: bool,
) -> Option<Written> {
    Some(match op {
        Op::Reserve {
            ctx,
            estimate,
            budgets,
            ..
        } => Written::Decided(
            match step(tx, isolate, |c| {
                reserve_in(c, budgets, ctx, *estimate, b.now, b.hold, b.owner)
            })? {
                Ok(decided) => decided,
                Err(e) => unchecked_reservation(budgets, ctx, *estimate, &e.to_string()),
            },
        ),
        Op::Hold { id, .. } if b.settled.contains(id) => Written::Nothing,
        Op::Hold {
            id,
            ctx,
            amount,
            at,
        } => {
            // A hold that cannot be written leaves its attempt without a
            // crash record; its settle still bills it.
            match step(tx, isolate, |c| {
                insert_hold(c, ctx, *amount, *at, b.hold, b.owner)
            })? {
                Ok(row) => {
                    rows.insert(*id, row);
                    Written::Held
                }
                Err(_) => Written::Nothing,
            }
        }
        Op::Checkpoint { reservation, .. } if b.settled.contains(&reservation.id) => {
            Written::Nothing
        }
        Op::Checkpoint {
            reservation,
            progress,
            at,
        } => {
            // A checkpoint that cannot be written is superseded by the
            // next one (or the settle).
            let row = row_of(rows, reservation.id);
            let _ = step(tx, isolate, |c| {
                checkpoint_row_in(c, row, reservation, progress, *at, b.hold, b.owner)
            })?;
            Written::Nothing
        }
        Op::Settle {
            reservation,
            actual,
            at,
        } => {
            let row = row_of(rows, reservation.id);
            match step(tx, isolate, |c| {
                settle_row_in(c, row, &reservation.context, actual.as_ref(), *at)
            })? {
                Ok(()) => Written::Nothing,
                Err(_) => Written::Failed,
            }
        }
        // Health is advice: a sample that cannot be written is lost. Each
        // of these is one statement, which SQLite undoes alone if it fails.
        Op::Sample {
            provider,
            model,
            sample,
        } => match record_in(tx, provider, model, sample) {
            Ok(()) => Written::Sampled,
            Err(_) => Written::Nothing,
        },
        Op::Cooldown {
            provider,
            model,
            state,
        } => {
            let _ = set_cooldown_in(tx, provider, model, *state);
            Written::Nothing
        }
        Op::Touch { token, at } => {
            let _ = touch_token(tx, *token, *at);
            Written::Nothing
        }
        Op::Flush { .. } => Written::Nothing,
    })
}

/// Run write `f` in `tx`: with `isolate`, in a savepoint of its own, so a
/// failure is undone alone (`Some(Err)`); without, directly, and a failure
/// (`None`) may leave part of it in the transaction.
fn step<T>(
    tx: &Connection,
    isolate: bool,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Option<Result<T, StoreError>> {
    if isolate {
        Some(in_savepoint(tx, f))
    } else {
        f(tx).ok().map(Ok)
    }
}

/// Run `f` in a savepoint of `tx`: its writes are kept when it succeeds
/// and undone when it fails, without undoing the rest of the batch.
fn in_savepoint<T>(
    tx: &Connection,
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
            let _ = reply.send(unchecked_reservation(&budgets, &ctx, estimate, why));
        }
        Op::Hold { .. } | Op::Settle { .. } => retry.push(op),
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

    /// Decide a reservation now if nothing can refuse it (no hard budget
    /// covers `ctx`): the hold is queued to be written, not waited for.
    fn reserve_in_memory(&self, ctx: &SpendContext, estimate: Option<Cost>) -> Option<Reservation> {
        if hard_budgets(&self.budgets, ctx).next().is_some() {
            return None;
        }
        let amount = estimate.unwrap_or(Cost::ZERO);
        let id = IN_MEMORY | self.writer.inner.next_hold.fetch_add(1, Ordering::Relaxed);
        let op = Op::Hold {
            id,
            ctx: ctx.clone(),
            amount,
            at: now_ms(),
        };
        Some(Reservation {
            // No writer: no recorded hold, as when the ledger cannot be
            // written (the settle still bills it).
            id: if self.writer.send(op).is_ok() { id } else { 0 },
            amount,
            context: ctx.clone(),
        })
    }

    fn queue_reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<PendingReservation, Box<Result<Reservation, BudgetDenied>>> {
        if let Some(held) = self.reserve_in_memory(ctx, estimate) {
            return Err(Box::new(Ok(held)));
        }
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
        unchecked_reservation(
            &self.budgets,
            ctx,
            estimate,
            "the ledger writer has stopped",
        )
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
            self.writer.orphan(Orphan {
                reservation,
                actual,
                at,
            });
        }
    }
}

/// One target's health, as last read plus what this process wrote since.
#[derive(Debug, Clone)]
struct CachedTarget {
    loaded: Instant,
    /// Newest first, at most [`KEEP_SAMPLES`].
    samples: VecDeque<HealthSample>,
    /// The statistics of `samples`, once computed: they change only when
    /// a sample comes (or the target is read again), while the router
    /// asks for them on every request (two sorts of the window).
    stats: Option<HealthStats>,
    cooldown: CooldownState,
    /// A reload of it is under way in the background.
    reloading: bool,
}

/// Targets by provider, then model: looked up by `&str` without building
/// an owned key (the router reads health several times per request).
type HealthCache = Arc<Mutex<HashMap<String, HashMap<String, CachedTarget>>>>;

/// Put `target` in `cache` as `provider`'s `model`.
fn cache_insert(
    cache: &mut HashMap<String, HashMap<String, CachedTarget>>,
    provider: &str,
    model: &str,
    target: CachedTarget,
) {
    cache
        .entry(provider.to_owned())
        .or_default()
        .insert(model.to_owned(), target);
}

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
        stats: None,
        cooldown: db.cooldown(provider, model),
        reloading: false,
    }
}

impl CachedHealth {
    fn with_target<T>(
        &self,
        provider: &str,
        model: &str,
        read: impl FnOnce(&mut CachedTarget) -> T,
    ) -> T {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(t) = cache.get_mut(provider).and_then(|m| m.get_mut(model))
        {
            if t.loaded.elapsed() < HEALTH_TTL {
                return read(t);
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                if !t.reloading {
                    t.reloading = true;
                    let (cache, store) = (Arc::clone(&self.cache), self.writer.store().clone());
                    let (provider, model) = (provider.to_owned(), model.to_owned());
                    runtime.spawn_blocking(move || {
                        let loaded = load_target(&store, &provider, &model);
                        if let Ok(mut cache) = cache.lock() {
                            cache_insert(&mut cache, &provider, &model, loaded);
                        }
                    });
                }
                return read(t);
            }
        }
        // Read outside the lock: other targets' reads need not wait.
        let mut loaded = load_target(self.writer.store(), provider, model);
        let answer = read(&mut loaded);
        if let Ok(mut cache) = self.cache.lock() {
            cache_insert(&mut cache, provider, model, loaded);
        }
        answer
    }

    fn update(&self, provider: &str, model: &str, change: impl FnOnce(&mut CachedTarget)) {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(t) = cache.get_mut(provider).and_then(|m| m.get_mut(model))
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
            t.stats = None;
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

    fn stats(&self, provider: &str, model: &str) -> HealthStats {
        self.with_target(provider, model, |t| {
            *t.stats
                .get_or_insert_with(|| HealthStats::from_each(t.samples.iter().take(HEALTH_WINDOW)))
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
        assert_ne!(hold.id, 0, "the hold is recorded");
        let count = |sql: &str| -> i64 {
            let c = Connection::open(dir.path().join("db.sqlite3")).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        // Written concurrently with the attempt; a caller can wait for it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(writer.written(writer.queued()));
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

    fn hard(tag: &str, limit: &str) -> Budget {
        Budget {
            name: format!("{tag}-cap"),
            scope: BudgetScope::Tag(tag.into()),
            period: BudgetPeriod::Daily,
            limit: usd(limit),
            warn_at_bp: 8000,
            hard: true,
        }
    }

    #[test]
    fn holds_no_hard_budget_covers_never_wait_for_the_disk_and_hard_ones_do() {
        let (dir, store) = store();
        let path = dir.path().join("db.sqlite3");
        let writer = store.batch_writer().unwrap();
        let gate = Arc::new(writer.gate(vec![hard("capped", "1.00")]));
        let count = |sql: &str| -> i64 {
            let c = Connection::open(&path).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        // Another process holds the database's write lock.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Instant::now();
        let free = gate.reserve(&ctx("free"), Some(usd("0.10"))).unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "an attempt no hard budget covers does not wait for a commit"
        );
        // One a hard budget covers waits: its check must see every hold.
        let capped = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.reserve(&ctx("capped"), Some(usd("0.10"))))
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!capped.is_finished(), "decided without the database");
        blocker.execute_batch("COMMIT").unwrap();
        let capped = capped.join().unwrap().unwrap();
        assert_eq!(capped.id & IN_MEMORY, 0, "a committed row");
        writer.flush();
        assert_eq!(count("SELECT count(*) FROM reservations"), 2);
        // Settling the in-memory hold deletes its row, not another one.
        gate.settle(free, settled("0.05"));
        writer.flush();
        assert_eq!(count("SELECT count(*) FROM reservations"), 1);
        let held: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT tag FROM reservation_tags", [], |r| r.get(0))
            .unwrap();
        assert_eq!(held, "capped");
        // A hold and its settle queued together: just the ledger row.
        let quick = gate.reserve(&ctx("free"), Some(usd("0.10"))).unwrap();
        gate.settle(quick, settled("0.02"));
        gate.settle(capped, settled("0.03"));
        writer.flush();
        assert_eq!(count("SELECT count(*) FROM reservations"), 0);
        let by_tag = store.spend(SpendGrouping::Tag, None).unwrap();
        let cost = |tag: &str| {
            by_tag
                .iter()
                .find(|g| g.key.as_deref() == Some(tag))
                .map(|g| (g.requests, g.cost))
        };
        assert_eq!(cost("free"), Some((2, usd("0.07"))));
        assert_eq!(cost("capped"), Some((1, usd("0.03"))));
    }

    /// Every ledger row of the database at `path`, with its tags, minus
    /// the time it was written.
    fn ledger_rows(path: &std::path::Path) -> Vec<String> {
        let c = Connection::open(path).unwrap();
        let mut s = c
            .prepare(
                "SELECT provider, model, route, conversation, cost_nanos, estimated,
                    input_tokens, output_tokens, priced, message,
                    (SELECT group_concat(tag) FROM ledger_tags WHERE entry_id = ledger.id)
                 FROM ledger ORDER BY id",
            )
            .unwrap();
        s.query_map([], |r| {
            Ok((0..11)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_hold_settled_before_it_was_written_leaves_the_same_ledger_as_one_written_first() {
        let run = |merged: bool| {
            let (dir, store) = store();
            let path = dir.path().join("db.sqlite3");
            // Counts the hold rows ever inserted.
            Connection::open(&path)
                .unwrap()
                .execute_batch(
                    "CREATE TABLE holds_seen (n INTEGER);
                     CREATE TRIGGER count_holds AFTER INSERT ON reservations
                     BEGIN INSERT INTO holds_seen VALUES (1); END;",
                )
                .unwrap();
            let writer = store.batch_writer().unwrap();
            let gate = writer.gate(Vec::new());
            // Under load: the writer is busy (here: waiting for another
            // process's lock) while holds and their settles queue up.
            let blocker = Connection::open(&path).unwrap();
            if merged {
                blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
            }
            let first = gate.reserve(&ctx("x"), Some(usd("0.20"))).unwrap();
            if merged {
                // The writer has x's hold and waits for the lock, so the
                // holds below queue behind it with their settles (a writer
                // that took the queue between a hold and its settle would
                // write that hold, as it must).
                writer.wait_taken();
            }
            for (tag, cost) in [("a", "0.01"), ("b", "0.0234")] {
                let hold = gate.reserve(&ctx(tag), Some(usd("0.20"))).unwrap();
                if !merged {
                    // Written on its own first, as at one request at a time.
                    writer.flush();
                }
                gate.settle(hold, settled(cost));
            }
            if merged {
                blocker.execute_batch("COMMIT").unwrap();
            }
            gate.settle(first, settled("0.5"));
            writer.flush();
            let count = |sql: &str| -> i64 {
                Connection::open(&path)
                    .unwrap()
                    .query_row(sql, [], |r| r.get(0))
                    .unwrap()
            };
            assert_eq!(count("SELECT count(*) FROM reservations"), 0, "a hold left");
            let inserted = count("SELECT count(*) FROM holds_seen");
            let total = store.spend_total(None).unwrap();
            (inserted, ledger_rows(&path), total.requests, total.cost)
        };
        let (apart, merged) = (run(false), run(true));
        assert_eq!(apart.0, 3, "every hold written");
        // Those of a and b were settled before they were written (x's may
        // have been too, or written while the lock was waited for).
        assert!(merged.0 <= 1, "{} holds written", merged.0);
        assert_eq!(apart.1.len(), 3);
        assert_eq!((apart.2, apart.3), (3, usd("0.5334")));
        assert_eq!(merged.1, apart.1, "the same rows");
        assert_eq!((merged.2, merged.3), (apart.2, apart.3));
    }

    #[test]
    fn a_write_that_fails_is_undone_alone_and_the_rest_of_its_batch_is_kept() {
        let (dir, store) = store();
        let path = dir.path().join("db.sqlite3");
        let count = |sql: &str| -> i64 {
            Connection::open(&path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap()
        };
        // The ledger refuses tag "bad": its settle fails halfway, after
        // deleting the hold and writing the ledger row.
        let refuse = "CREATE TRIGGER refuse_bad BEFORE INSERT ON ledger_tags
             WHEN NEW.tag = 'bad' BEGIN SELECT RAISE(ABORT, 'forced failure'); END;";
        Connection::open(&path)
            .unwrap()
            .execute_batch(refuse)
            .unwrap();
        let writer = store.batch_writer().unwrap();
        let gate = writer.gate(Vec::new());
        let held: Vec<_> = ["a", "bad", "b"]
            .iter()
            .map(|tag| gate.reserve(&ctx(tag), Some(usd("0.20"))).unwrap())
            .collect();
        writer.flush();
        assert_eq!(count("SELECT count(*) FROM reservations"), 3);
        // Another process holds the write lock while the writer takes the
        // next hold, so the settles and the checkpoint queued meanwhile
        // are applied together in the batch after it.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let c = gate.reserve(&ctx("c"), Some(usd("0.20"))).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for (hold, cost) in held.into_iter().zip(["0.01", "0.02", "0.03"]) {
            gate.settle(hold, settled(cost));
        }
        let mut sent = crate::attempt::Accumulator::new("p", "m");
        sent.mark_sent();
        gate.checkpoint(&c, &sent.progress(Duration::ZERO, None, 40));
        blocker.execute_batch("COMMIT").unwrap();
        writer.flush();
        // Each ledger row's tags, in order.
        let tags = || -> Vec<Option<String>> {
            let c = Connection::open(&path).unwrap();
            let mut s = c
                .prepare(
                    "SELECT (SELECT group_concat(tag) FROM ledger_tags WHERE entry_id = ledger.id)
                     FROM ledger ORDER BY id",
                )
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let some = |tags: &[&str]| -> Vec<Option<String>> {
            tags.iter().map(|t| Some((*t).to_owned())).collect()
        };
        assert_eq!(
            tags(),
            some(&["a", "b"]),
            "the others' ledger rows are kept, the failed one's undone"
        );
        assert_eq!(store.spend_total(None).unwrap().cost, usd("0.04"));
        // The failed settle left its hold; the checkpoint was written.
        assert_eq!(count("SELECT count(*) FROM reservations"), 2);
        assert_eq!(
            count("SELECT count(*) FROM reservation_tags WHERE tag = 'bad'"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM reservations WHERE progress_at IS NOT NULL"),
            1
        );
        // Once the ledger takes it, the failed settle is written, once.
        Connection::open(&path)
            .unwrap()
            .execute_batch("DROP TRIGGER refuse_bad")
            .unwrap();
        writer.flush();
        gate.settle(c, settled("0.04"));
        writer.flush();
        assert_eq!(tags(), some(&["a", "b", "bad", "c"]));
        let total = store.spend_total(None).unwrap();
        assert_eq!((total.requests, total.cost), (4, usd("0.10")));
        // No hold is left behind for the store to bill a second time when
        // it closes (as crash recovery would).
        assert_eq!(count("SELECT count(*) FROM reservations"), 0);
        drop(gate);
        drop(writer);
        drop(store);
        assert_eq!(count("SELECT count(*) FROM ledger"), 4);
        assert_eq!(count("SELECT sum(cost_nanos) FROM ledger"), 100_000_000);
    }

    #[test]
    fn a_settle_the_writer_cannot_take_never_blocks_the_runtime_and_is_not_lost() {
        let (dir, store) = store();
        let path = dir.path().join("db.sqlite3");
        let writer = store.batch_writer().unwrap();
        let gate = writer.gate(Vec::new());
        let hold = gate.reserve(&ctx("x"), Some(usd("0.20"))).unwrap();
        writer.flush();
        writer.end_thread();
        let count = |sql: &str| -> i64 {
            let c = Connection::open(&path).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count("SELECT count(*) FROM reservations"), 1);
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let started = Instant::now();
            gate.settle(hold, settled("0.05"));
            assert!(
                started.elapsed() < Duration::from_millis(200),
                "the settle waited for the database on the async thread"
            );
            // The runtime's only thread goes on running tasks meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        blocker.execute_batch("COMMIT").unwrap();
        let deadline = Instant::now() + Duration::from_secs(8);
        while count("SELECT count(*) FROM ledger") == 0 {
            assert!(Instant::now() < deadline, "the settle was lost");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its hold was released, so nothing bills it twice.
        assert_eq!(count("SELECT count(*) FROM reservations"), 0);
        drop(gate);
        drop(writer);
        drop(store);
        assert_eq!(count("SELECT count(*) FROM ledger"), 1);
        assert_eq!(count("SELECT sum(cost_nanos) FROM ledger"), 50_000_000);
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
    fn health_statistics_follow_each_sample_this_process_records() {
        let (_dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let health = writer.health();
        let sample = |ok: bool, ttft: f64| HealthSample {
            at_unix_ms: 1,
            ok,
            error_kind: (!ok).then_some(crate::ErrorKind::Overloaded),
            ttft_ms: Some(ttft),
            tokens_per_s: None,
        };
        assert_eq!(health.stats("p", "m").samples, 0);
        health.record("p", "m", &sample(true, 100.0));
        let one = health.stats("p", "m");
        assert_eq!((one.samples, one.success_rate), (1, Some(1.0)));
        assert_eq!(health.stats("p", "m"), one, "asked again, unchanged");
        health.record("p", "m", &sample(false, 300.0));
        let two = health.stats("p", "m");
        assert_eq!((two.samples, two.success_rate), (2, Some(0.5)));
        assert_eq!(
            two.ttft_p90_ms,
            Some(300.0),
            "the new sample counts at once"
        );
    }

    #[test]
    fn old_health_samples_are_trimmed_every_so_often_and_the_newest_kept() {
        let (dir, store) = store();
        let writer = store.batch_writer().unwrap();
        let health = writer.health();
        let rows = || -> Vec<i64> {
            let c = Connection::open(dir.path().join("db.sqlite3")).unwrap();
            let mut s = c
                .prepare("SELECT at FROM health_samples WHERE provider = 'p' ORDER BY id DESC")
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let sample = |at: i64| HealthSample {
            at_unix_ms: at,
            ok: true,
            error_kind: None,
            ttft_ms: Some(5.0),
            tokens_per_s: None,
        };
        // One sample per batch, as a request at a time writes them.
        let total = KEEP_SAMPLES + 3 * TRIM_EVERY + 5;
        for at in 0..total as i64 {
            health.record("p", "m", &sample(at));
            writer.flush();
            let kept = rows().len();
            assert!(
                kept <= KEEP_SAMPLES + TRIM_EVERY,
                "{kept} samples kept after {at}"
            );
        }
        let kept = rows();
        assert!(kept.len() >= KEEP_SAMPLES, "{} kept", kept.len());
        assert_eq!(kept[0], total as i64 - 1, "the newest is kept");
        assert!(
            kept.windows(2).all(|w| w[0] == w[1] + 1),
            "the newest ones, none missing between"
        );
        // Another target's samples are not touched.
        health.record("q", "m", &sample(1));
        writer.flush();
        assert!(rows().len() >= KEEP_SAMPLES);
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
