//! The single writer with group commit.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` every commit waits for an fsync.
//! Instead of letting callers queue on the database lock and pay one fsync each, every write goes to one
//! thread that owns the write connection. It opens a transaction, runs every job waiting in its queue
//! (each inside a savepoint, so one failing job rolls back only itself), commits once, and only then
//! answers each caller. Concurrent writers therefore share one fsync, and nobody hears "done" before the
//! commit that made their change durable.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use store::StoreError;
use tokio::sync::oneshot;

/// Called after the commit with its result; delivers the job's own result to its caller.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued write: either it runs inside the group transaction, or (when no transaction could be
/// opened) it is answered with the error without touching the database.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Completion;
    fn fail(self: Box<Self>, error: StoreError);
}

struct WriteJob<F, R> {
    op: F,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for WriteJob<F, R>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Completion {
        let WriteJob { op, reply } = *self;
        match run_in_savepoint(conn, op) {
            Ok(value) => Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(commit.map(|()| value));
            }),
            Err(e) => Box::new(move |_commit| {
                let _ = reply.send(Err(e));
            }),
        }
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Most jobs folded into one commit: bounds the latency a long queue adds to its first job.
const MAX_JOBS_PER_COMMIT: usize = 512;

pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    pub(crate) fn start(conn: Connection, group_commit: bool) -> Self {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let limit = if group_commit { MAX_JOBS_PER_COMMIT } else { 1 };
        // The thread ends when every sender (every clone of the store) is gone.
        let spawned = thread::Builder::new()
            .name("casewire-sqlite-writer".into())
            .spawn(move || run(conn, jobs, limit));
        if let Err(e) = spawned {
            tracing::error!("cannot start the SQLite writer thread: {e}");
        }
        Self { queue }
    }

    /// Runs `op` in the next group transaction and returns its result once that transaction committed.
    pub(crate) async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob { op, reply });
        self.queue
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped before answering".into())
        })?
    }
}

fn run_in_savepoint<R>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    // Cached statements: these run twice per job, parsing them each time would cost more than the job.
    let savepoint = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(crate::sql_error)
    };
    savepoint("SAVEPOINT job")?;
    match op(conn) {
        Ok(value) => {
            savepoint("RELEASE job")?;
            Ok(value)
        }
        Err(e) => {
            // Undo this job only; the others in the group keep their work.
            let _ = savepoint("ROLLBACK TO job");
            let _ = savepoint("RELEASE job");
            Err(e)
        }
    }
}

fn run(conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>, limit: usize) {
    let mut completions: Vec<Completion> = Vec::with_capacity(limit);
    while let Ok(first) = jobs.recv() {
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            first.fail(crate::sql_error(e));
            continue;
        }
        completions.push(first.run(&conn));
        while completions.len() < limit {
            match jobs.try_recv() {
                Ok(job) => completions.push(job.run(&conn)),
                Err(_) => break,
            }
        }
        let commit = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(crate::sql_error);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for completion in completions.drain(..) {
            completion(commit.clone());
        }
    }
}
