//! Group commit for writes that come in bursts (the panes of a round start
//! together): the first job starts a writer on a blocking thread, and the
//! jobs that arrive while it writes wait and are written together, in the
//! order they came, by its next batch. Each caller waits for its own job's
//! result, so a pane still waits for its own row or hold to commit.
//!
//! The app's budget holds ([`super::SqliteBudgetGate`]) and the answer
//! rows it begins ([`crate::service::ChatService`]) go through it. The
//! Local API's [`super::BatchWriter`] is a different trade: a thread of
//! its own with a relaxed sync, holds no hard budget covers decided in
//! memory, and settles that wait for a kick.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::Store;

/// Writes one batch, in order: one result per job.
pub type WriteBatch<J, R> = fn(&Store, &[J]) -> Vec<R>;

/// Jobs waiting for the next batch, and whether a writer runs.
pub struct GroupCommit<J, R> {
    queue: Arc<Mutex<Queue<J, R>>>,
    write: WriteBatch<J, R>,
}

struct Queue<J, R> {
    jobs: Vec<(J, oneshot::Sender<R>)>,
    writing: bool,
}

impl<J, R> std::fmt::Debug for GroupCommit<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Batches written by `write`.
    pub fn new(write: WriteBatch<J, R>) -> Self {
        Self {
            queue: Arc::new(Mutex::new(Queue {
                jobs: Vec::new(),
                writing: false,
            })),
            write,
        }
    }

    /// Queue `job` for `store`; when no writer runs, one starts on
    /// `runtime`'s blocking threads. The receiver gets its result, or an
    /// error when the writer failed (panicked) before writing it.
    pub fn submit(
        &self,
        store: &Store,
        runtime: &tokio::runtime::Handle,
        job: J,
    ) -> oneshot::Receiver<R> {
        let (done, result) = oneshot::channel();
        let start_writer = {
            let mut queue = lock(&self.queue);
            queue.jobs.push((job, done));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            let (store, queue, write) = (store.clone(), Arc::clone(&self.queue), self.write);
            runtime.spawn_blocking(move || drain(&store, &queue, write));
        }
        result
    }
}

/// Write the queued jobs, a batch at a time, until none is left (then the
/// next job starts a writer again).
fn drain<J, R>(store: &Store, queue: &Mutex<Queue<J, R>>, write: WriteBatch<J, R>) {
    /// If writing panics, the waiting jobs get an error (their senders
    /// dropped) and the next job starts a writer again.
    struct OnPanic<'a, J, R>(&'a Mutex<Queue<J, R>>);
    impl<J, R> Drop for OnPanic<'_, J, R> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut queue = lock(self.0);
                queue.jobs.clear();
                queue.writing = false;
            }
        }
    }
    let _on_panic = OnPanic(queue);
    loop {
        let batch = {
            let mut queue = lock(queue);
            if queue.jobs.is_empty() {
                queue.writing = false;
                return;
            }
            std::mem::take(&mut queue.jobs)
        };
        let (jobs, senders): (Vec<J>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
        let results = write(store, &jobs);
        for (done, result) in senders.into_iter().zip(results) {
            // A caller that went away no longer waits; what was written
            // for it is settled like any request in flight.
            let _ = done.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::sync::Condvar;

    use super::*;

    /// The batches written, and whether the first may finish.
    static BATCHES: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());
    static OPEN: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

    /// Records its batch; the first waits until the test opens the gate.
    fn write(_: &Store, batch: &[u32]) -> Vec<u32> {
        let first = {
            let mut batches = lock(&BATCHES);
            batches.push(batch.to_vec());
            batches.len() == 1
        };
        if first {
            let (open, opened) = &OPEN;
            let mut open = lock(open);
            while !*open {
                open = opened.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
        }
        batch.iter().map(|j| j * 10).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_that_come_while_a_batch_is_written_go_together_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
        let runtime = tokio::runtime::Handle::current();
        let group = GroupCommit::new(write);
        let first = group.submit(&store, &runtime, 1);
        // The writer is busy with the first job: these wait for the next
        // batch.
        while lock(&BATCHES).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let rest: Vec<_> = (2..=4).map(|j| group.submit(&store, &runtime, j)).collect();
        {
            let (open, opened) = &OPEN;
            *lock(open) = true;
            opened.notify_all();
        }
        assert_eq!(first.await.unwrap(), 10);
        let mut got = Vec::new();
        for r in rest {
            got.push(r.await.unwrap());
        }
        // Each caller has its own result; the three that came together
        // were written as one batch, in the order they came.
        assert_eq!(got, [20, 30, 40]);
        assert_eq!(*lock(&BATCHES), [vec![1], vec![2, 3, 4]]);
        // A job that comes after them is a batch of its own.
        assert_eq!(group.submit(&store, &runtime, 5).await.unwrap(), 50);
        assert_eq!(lock(&BATCHES).last().unwrap(), &vec![5]);
    }
}
