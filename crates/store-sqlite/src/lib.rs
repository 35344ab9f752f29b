//! SQLite backend: one database file in WAL mode with `synchronous=FULL` (a commit is on disk before it
//! is reported), migrations applied on open, every write through the group-commit [`writer`], reads on
//! a small pool of their own connections (WAL lets them run beside the writer).

mod desk;
mod inbox;
mod migrations;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use store::StoreError;

use writer::Writer;

/// How the store syncs and groups commits. The defaults are the durable ones.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `FULL` (default): a commit survives power loss. `NORMAL` is offered for benchmarks only.
    pub synchronous_full: bool,
    /// Fold concurrent writes into one commit (default on).
    pub group_commit: bool,
    /// Longest a writer waits on a lock held by another process before failing.
    pub busy_timeout_ms: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            group_commit: true,
            busy_timeout_ms: 5_000,
        }
    }
}

/// A casewire database in one SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// Dropping it stops the checkpoint thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// How often the log is checkpointed into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the thread that checkpoints the write-ahead log (PASSIVE: it never blocks the writer or
/// readers). It ends when the returned sender is dropped.
fn start_checkpointer(
    path: &Path,
    options: &SqliteOptions,
) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn, options)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("casewire-sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("WAL checkpoint failed (will retry): {e}");
                }
            }
            // A last full pass at shutdown keeps the log short for the next start.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        });
    if let Err(e) = spawned {
        return Err(StoreError::Backend(format!(
            "cannot start the checkpoint thread: {e}"
        )));
    }
    Ok(stop)
}

pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::ReadOnly
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Every row of a query, or the first error.
pub(crate) fn collect<T>(
    rows: impl Iterator<Item = rusqlite::Result<T>>,
) -> Result<Vec<T>, StoreError> {
    rows.collect::<rusqlite::Result<Vec<T>>>()
        .map_err(sql_error)
}

/// `(state, count)` of a table with a `state` column, for the queue and inbox counts.
pub(crate) fn state_counts(
    conn: &Connection,
    table: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT state, count(*) FROM {table} GROUP BY state"
        ))
        .map_err(sql_error)?;
    collect(
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?,
    )
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_millis(options.busy_timeout_ms))
        .map_err(sql_error)?;
    let sync = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;"
    ))
    .map_err(sql_error)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        configure(&conn, &options)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(sql_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{} cannot use write-ahead logging (journal_mode is {mode})",
                path.display()
            )));
        }
        migrations::apply(&conn)?;
        // Checkpoints copy the log into the database file and fsync it: done on the writer they
        // would stall every commit queued behind them, so a thread of its own does them.
        conn.execute_batch("PRAGMA wal_autocheckpoint=0")
            .map_err(sql_error)?;
        let checkpointer = start_checkpointer(&path, &options)?;
        let writer = Writer::start(conn, options.group_commit);
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                options,
                writer,
                readers: Mutex::new(Vec::new()),
                _checkpointer: checkpointer,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.inner.writer.write(op).await
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    pub(crate) async fn read<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            let result = op(&conn);
            inner.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

/// Readers kept for reuse; more may exist while busy, the surplus is closed on return.
const POOLED_READERS: usize = 8;

impl Inner {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| {
            StoreError::Unavailable(format!("cannot open {}: {e}", self.path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_millis(
            self.options.busy_timeout_ms,
        ))
        .map_err(sql_error)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOLED_READERS {
            pool.push(conn);
        }
    }
}

/// Measures the fsync limit: commits per second of one-row transactions with `synchronous=FULL` on a
/// file at `path`, for `duration`. The benchmarks' reference figure.
pub fn fsync_limit(path: &Path, duration: std::time::Duration) -> Result<f64, StoreError> {
    let conn = Connection::open(path).map_err(sql_error)?;
    configure(&conn, &SqliteOptions::default())?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS fsync_probe(id INTEGER PRIMARY KEY, v BLOB)")
        .map_err(sql_error)?;
    let start = std::time::Instant::now();
    let mut commits = 0u64;
    while start.elapsed() < duration {
        conn.execute("INSERT INTO fsync_probe(v) VALUES (?1)", [&[0u8; 64][..]])
            .map_err(sql_error)?;
        commits += 1;
    }
    Ok(commits as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backend_passes_the_store_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(dir.path().join("casewire.db"), SqliteOptions::default()).unwrap();
        store::conformance::run_all(&store).await;
    }

    #[tokio::test]
    async fn file_is_wal_with_full_sync_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casewire.db");
        drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let (mode, sync, version): (String, i64, i64) = store
            .write(|conn| {
                let mode = conn
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(sql_error)?;
                let sync = conn
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(sql_error)?;
                let version = conn
                    .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                        r.get(0)
                    })
                    .map_err(sql_error)?;
                Ok((mode, sync, version))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL is 2");
        assert_eq!(version, migrations::LATEST);
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("g.db"), SqliteOptions::default()).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.write(|conn| {
                    // total_changes counts within this connection; data_version would not move for our own writes.
                    conn.execute(
                        "INSERT INTO sequences(name, value) VALUES (hex(randomblob(8)), 1)",
                        [],
                    )
                    .map_err(sql_error)?;
                    Ok(())
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n: i64 = store
            .read(|c| {
                c.query_row("SELECT count(*) FROM sequences", [], |r| r.get(0))
                    .map_err(sql_error)
            })
            .await
            .unwrap();
        assert_eq!(n, 200);
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        for i in 0..200 {
            store
                .write(move |c| {
                    c.execute(
                        "INSERT INTO sequences(name, value) VALUES (?1, 1)",
                        [format!("s{i}")],
                    )
                    .map_err(sql_error)?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        let probe = Connection::open(&path).unwrap();
        let (log, copied): (i64, i64) = probe
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert!(log > 0, "the writer does not checkpoint by itself");
        assert_eq!(
            copied, log,
            "every frame was already copied by the checkpoint thread"
        );
        let autocheckpoint: i64 = store
            .write(|c| {
                c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                    .map_err(sql_error)
            })
            .await
            .unwrap();
        assert_eq!(autocheckpoint, 0);
    }

    #[tokio::test]
    async fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("r.db"), SqliteOptions::default()).unwrap();
        let good = store.write(|c| {
            c.execute("INSERT INTO sequences(name, value) VALUES ('a', 1)", [])
                .map_err(sql_error)?;
            Ok(())
        });
        let bad = store.write(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO sequences(name, value) VALUES ('b', 1)", [])
                .map_err(sql_error)?;
            Err(StoreError::Conflict("forced".into()))
        });
        let (good, bad) = tokio::join!(good, bad);
        assert!(good.is_ok());
        assert!(matches!(bad, Err(StoreError::Conflict(_))));
        let names: Vec<String> = store
            .read(|c| {
                let mut stmt = c
                    .prepare("SELECT name FROM sequences ORDER BY name")
                    .map_err(sql_error)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql_error)?;
                rows.collect::<Result<_, _>>().map_err(sql_error)
            })
            .await
            .unwrap();
        assert_eq!(names, vec!["a".to_owned()]);
    }
}
