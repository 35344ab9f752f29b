//! PostgreSQL backend: any number of casewire processes share one database. Notifications are claimed
//! with `FOR UPDATE SKIP LOCKED` under a lease (a process that dies leaves claims that expire), and a
//! write that queues notifications sends `NOTIFY casewire_outbox` in its transaction so that idle
//! delivery engines on every node wake when it commits. PostgreSQL groups concurrent commits itself.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use store::{
    AfterAttempt, ApplyOutcome, AttemptRecord, DeskStore, InboxCounts, InboxFilter, InboxRow,
    InboxState, InboxStore, Millis, NotificationState, QueueCounts, QueueFilter,
    QueuedNotification, ReceivedNotification, RecordRow, RecordWrite, Result, StoreError,
};
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// The channel a commit that queued notifications signals on.
pub const OUTBOX_CHANNEL: &str = "casewire_outbox";

const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE sequences (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE records (
        id TEXT PRIMARY KEY, object TEXT NOT NULL, data TEXT NOT NULL,
        deleted BOOLEAN NOT NULL DEFAULT false, version BIGINT NOT NULL,
        created BIGINT NOT NULL, modified BIGINT NOT NULL
    );
    CREATE TABLE outbox (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, action TEXT NOT NULL, endpoint TEXT NOT NULL,
        object TEXT NOT NULL, record_id TEXT NOT NULL, snapshot TEXT NOT NULL, created BIGINT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL, lease_until BIGINT, last_error TEXT, finished BIGINT, note TEXT
    );
    CREATE INDEX outbox_due ON outbox (action, next_attempt) WHERE state = 'pending';
    CREATE INDEX outbox_state ON outbox (state, created);
    CREATE TABLE attempts (
        seq BIGSERIAL PRIMARY KEY, action TEXT NOT NULL, endpoint TEXT NOT NULL, started BIGINT NOT NULL,
        duration_ms BIGINT NOT NULL, http_status INTEGER, delivered BOOLEAN NOT NULL, reason TEXT,
        notification_ids TEXT NOT NULL
    );
    CREATE TABLE attempt_notifications (
        notification_id TEXT NOT NULL, attempt_seq BIGINT NOT NULL REFERENCES attempts (seq),
        PRIMARY KEY (notification_id, attempt_seq)
    );
    CREATE TABLE inbox (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, route TEXT NOT NULL, organization_id TEXT NOT NULL,
        action_id TEXT NOT NULL, object_type TEXT NOT NULL, record_id TEXT, version BIGINT, fields TEXT NOT NULL,
        received BIGINT NOT NULL, state TEXT NOT NULL DEFAULT 'received', attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL, last_error TEXT, finished BIGINT
    );
    CREATE INDEX inbox_due ON inbox (next_attempt) WHERE state = 'received';
    CREATE INDEX inbox_state ON inbox (state, seq);
"#,
    // 2: the newest applied version of a record, asked per notification by the applier.
    r#"
    CREATE INDEX inbox_record_versions ON inbox (route, object_type, record_id, version) WHERE state = 'applied';
"#,
    // 3: scans of one object's records (SOQL), and API tokens stored by hash.
    r#"
    CREATE INDEX records_object ON records (object, id) WHERE NOT deleted;
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, label TEXT NOT NULL, created BIGINT NOT NULL, expires BIGINT
    );
"#,
];

/// Migrations of concurrent starts are serialized by this advisory lock.
const MIGRATION_LOCK: i64 = 0x6361_7365_7769_7265;

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(e.to_string());
        }
        if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            return StoreError::Unavailable(e.to_string());
        }
        return StoreError::Backend(e.to_string());
    }
    // No SQLSTATE: the connection itself failed.
    StoreError::Unavailable(e.to_string())
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {e}"))
}

impl PgStore {
    /// Connects to `url` (`postgres://...`), optionally inside `schema` (created if missing; used to
    /// keep test runs apart), and brings the schema up to date.
    pub async fn open(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StoreError::Backend(format!(
                    "schema name {schema:?} must be letters, digits or _"
                )));
            }
            let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(pg_error)?;
            drop(client);
            let _ = driver.await;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = Self { pool, config };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg_error)?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        let latest = MIGRATIONS.len() as i64;
        if current > latest {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {current}, newer than this casewire ({latest}); upgrade casewire"
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(index as i64 + 1)],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    /// Wakes `signal` whenever any process commits notifications, until the connection drops (then
    /// it reconnects). Engines still poll at their idle interval, so a lost wake-up only delays.
    pub fn listen_outbox(&self, signal: Arc<Notify>) -> tokio::task::JoinHandle<()> {
        let config = self.config.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen_once(&config, &signal).await {
                    tracing::warn!("LISTEN {OUTBOX_CHANNEL} lost: {e}; reconnecting");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

async fn listen_once(config: &tokio_postgres::Config, signal: &Notify) -> Result<()> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {OUTBOX_CHANNEL}");
    {
        let listen = client.batch_execute(&statement);
        tokio::pin!(listen);
        // The connection must be driven while LISTEN runs.
        loop {
            tokio::select! {
                done = &mut listen => { done.map_err(pg_error)?; break; }
                message = messages.next() => match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => signal.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(pg_error(e)),
                    None => return Ok(()),
                }
            }
        }
    }
    // `client` stays alive (the session keeps listening) while its connection delivers messages.
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(_)) => signal.notify_one(),
            Ok(_) => {}
            Err(e) => return Err(pg_error(e)),
        }
    }
    let _ = &client;
    Ok(())
}

const OUTBOX_COLUMNS: &str = "id, action, endpoint, object, record_id, snapshot, created, state, attempts, \
                              next_attempt, last_error, finished, note";

fn outbox_row(row: &Row) -> QueuedNotification {
    outbox_row_at(row, 0)
}

/// Reads the `OUTBOX_COLUMNS` starting at column `base` (claims put `seq` before them).
fn outbox_row_at(row: &Row, base: usize) -> QueuedNotification {
    let state: String = row.get(base + 7);
    let attempts: i32 = row.get(base + 8);
    QueuedNotification {
        id: row.get(base),
        action: row.get(base + 1),
        endpoint: row.get(base + 2),
        object: row.get(base + 3),
        record_id: row.get(base + 4),
        snapshot: row.get(base + 5),
        created: row.get(base + 6),
        state: NotificationState::parse(&state).unwrap_or(NotificationState::Pending),
        attempts: attempts.max(0) as u32,
        next_attempt: row.get(base + 9),
        last_error: row.get(base + 10),
        finished: row.get(base + 11),
        note: row.get(base + 12),
    }
}

const INBOX_COLUMNS: &str = "id, route, organization_id, action_id, object_type, record_id, version, fields, \
                             received, state, attempts, next_attempt, last_error, finished";

fn inbox_row(row: &Row) -> InboxRow {
    let state: String = row.get(9);
    let attempts: i32 = row.get(10);
    InboxRow {
        id: row.get(0),
        route: row.get(1),
        organization_id: row.get(2),
        action_id: row.get(3),
        object_type: row.get(4),
        record_id: row.get(5),
        version: row.get(6),
        fields: row.get(7),
        received: row.get(8),
        state: InboxState::parse(&state).unwrap_or(InboxState::Received),
        attempts: attempts.max(0) as u32,
        next_attempt: row.get(11),
        last_error: row.get(12),
        finished: row.get(13),
    }
}

fn record_row(row: &Row) -> RecordRow {
    RecordRow {
        id: row.get(0),
        object: row.get(1),
        data: row.get(2),
        deleted: row.get(3),
        version: row.get(4),
    }
}

#[async_trait]
impl DeskStore for PgStore {
    async fn next_sequence(&self, name: &str) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO sequences (name, value) VALUES ($1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value",
                &[&name],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn get_record(&self, object: &str, id: &str) -> Result<Option<RecordRow>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, object, data, deleted, version FROM records WHERE id = $1 AND object = $2",
                &[&id, &object],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(record_row))
    }

    async fn get_records(&self, ids: &[String]) -> Result<Vec<RecordRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, object, data, deleted, version FROM records WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(record_row).collect())
    }

    async fn save_record(&self, w: RecordWrite) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let version = match w.expected_version {
            None => {
                let inserted = tx
                    .execute(
                        "INSERT INTO records (id, object, data, deleted, version, created, modified)
                         VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (id) DO NOTHING",
                        &[&w.id, &w.object, &w.data, &w.deleted, &w.now],
                    )
                    .await
                    .map_err(pg_error)?;
                if inserted == 0 {
                    return Err(StoreError::Conflict(format!(
                        "record {} exists already",
                        w.id
                    )));
                }
                1
            }
            Some(expected) => {
                let updated = tx
                    .execute(
                        "UPDATE records SET data = $1, deleted = $2, version = version + 1, modified = $3
                         WHERE id = $4 AND version = $5",
                        &[&w.data, &w.deleted, &w.now, &w.id, &expected],
                    )
                    .await
                    .map_err(pg_error)?;
                if updated == 0 {
                    return Err(StoreError::Conflict(format!(
                        "record {} changed since version {expected} was read",
                        w.id
                    )));
                }
                expected + 1
            }
        };
        if !w.notifications.is_empty() {
            let insert = tx
                .prepare(
                    "INSERT INTO outbox (id, action, endpoint, object, record_id, snapshot, created, next_attempt)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .await
                .map_err(pg_error)?;
            for n in &w.notifications {
                tx.execute(
                    &insert,
                    &[
                        &n.id,
                        &n.action,
                        &n.endpoint,
                        &n.object,
                        &n.record_id,
                        &n.snapshot,
                        &n.created,
                    ],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.batch_execute(&format!("NOTIFY {OUTBOX_CHANNEL}"))
                .await
                .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(version)
    }

    async fn claim(
        &self,
        action: &str,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<QueuedNotification>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE outbox SET lease_until = $3 WHERE seq IN (
                        SELECT seq FROM outbox WHERE state = 'pending' AND action = $1 AND next_attempt <= $2
                        AND (lease_until IS NULL OR lease_until <= $2)
                        ORDER BY next_attempt, seq LIMIT $4 FOR UPDATE SKIP LOCKED)
                     RETURNING seq, {OUTBOX_COLUMNS}"
                ),
                &[&action, &now, &lease_until, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        let mut claimed: Vec<(i64, QueuedNotification)> = rows
            .iter()
            .map(|row| (row.get::<_, i64>(0), outbox_row_at(row, 1)))
            .collect();
        claimed.sort_by_key(|(seq, _)| *seq);
        Ok(claimed.into_iter().map(|(_, n)| n).collect())
    }

    async fn finish_attempt(
        &self,
        attempt: AttemptRecord,
        outcomes: Vec<(String, AfterAttempt)>,
    ) -> Result<()> {
        let ids_json = serde_json::to_string(&attempt.notification_ids)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let status = attempt.http_status.map(i32::from);
        let seq: i64 = tx
            .query_one(
                "INSERT INTO attempts (action, endpoint, started, duration_ms, http_status, delivered, reason, notification_ids)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
                &[
                    &attempt.action,
                    &attempt.endpoint,
                    &attempt.started,
                    &attempt.duration_ms,
                    &status,
                    &attempt.delivered,
                    &attempt.reason,
                    &ids_json,
                ],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        tx.execute(
            "INSERT INTO attempt_notifications (notification_id, attempt_seq)
             SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            &[&attempt.notification_ids, &seq],
        )
        .await
        .map_err(pg_error)?;
        let finished = attempt.started + attempt.duration_ms;
        for (id, after) in &outcomes {
            match after {
                AfterAttempt::Delivered => {
                    tx.execute(
                        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished = $2,
                         lease_until = NULL, last_error = NULL WHERE id = $1 AND state = 'pending'",
                        &[id, &finished],
                    )
                    .await
                }
                AfterAttempt::Retry { next_attempt } => {
                    tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt = $2, lease_until = NULL,
                         last_error = $3 WHERE id = $1 AND state = 'pending'",
                        &[id, next_attempt, &attempt.reason],
                    )
                    .await
                }
                AfterAttempt::Expired { keep } => {
                    let state = if *keep { "failed" } else { "dropped" };
                    let reason = format!(
                        "expired: {}",
                        attempt.reason.as_deref().unwrap_or("not delivered before the expiry")
                    );
                    tx.execute(
                        "UPDATE outbox SET state = $2, attempts = attempts + 1, finished = $3, lease_until = NULL,
                         last_error = $4 WHERE id = $1 AND state = 'pending'",
                        &[id, &state, &finished, &reason],
                    )
                    .await
                }
            }
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn release(&self, ids: &[String]) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE outbox SET lease_until = NULL WHERE id = ANY($1) AND state = 'pending'",
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueuedNotification>> {
        let client = self.client().await?;
        let states: Vec<String> = filter
            .states
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let limit = if filter.limit == 0 {
            i64::MAX
        } else {
            filter.limit as i64
        };
        let rows = client
            .query(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR action = $1)
                     AND ($2::text IS NULL OR endpoint = $2) AND (cardinality($3::text[]) = 0 OR state = ANY($3))
                     AND ($4::bigint IS NULL OR created <= $4) AND ($5::bigint IS NULL OR created >= $5)
                     ORDER BY seq LIMIT $6"
                ),
                &[&filter.action, &filter.endpoint, &states, &filter.created_before, &filter.created_after, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(outbox_row).collect())
    }

    async fn get_notification(&self, id: &str) -> Result<Option<QueuedNotification>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(outbox_row))
    }

    async fn retry_now(&self, ids: &[String], now: Millis) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE outbox SET next_attempt = $2, finished = NULL,
                 created = CASE WHEN state = 'failed' THEN $2 ELSE created END, state = 'pending'
                 WHERE id = ANY($1) AND state IN ('pending', 'failed')",
                &[&ids, &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(n as usize)
    }

    async fn delete_notifications(&self, ids: &[String], who: &str, now: Millis) -> Result<usize> {
        let client = self.client().await?;
        let note = format!("deleted by {who}");
        let n = client
            .execute(
                "UPDATE outbox SET state = 'deleted', finished = $2, note = $3, lease_until = NULL
                 WHERE id = ANY($1) AND state IN ('pending', 'failed')",
                &[&ids, &now, &note],
            )
            .await
            .map_err(pg_error)?;
        Ok(n as usize)
    }

    async fn queue_counts(&self) -> Result<QueueCounts> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT state, count(*) FROM outbox GROUP BY state", &[])
            .await
            .map_err(pg_error)?;
        Ok(QueueCounts::from_rows(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))),
        ))
    }

    async fn list_records(
        &self,
        object: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecordRow>> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id, object, data, deleted, version FROM records
                 WHERE object = $1 AND NOT deleted AND id > $2 ORDER BY id LIMIT $3",
                &[&object, &after.unwrap_or(""), &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(record_row).collect())
    }

    async fn put_token(&self, token: store::TokenRow) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Expired tokens are useless; dropping them here keeps the table small without a sweeper.
        tx.execute(
            "DELETE FROM tokens WHERE expires IS NOT NULL AND expires < $1",
            &[&token.created],
        )
        .await
        .map_err(pg_error)?;
        let inserted = tx
            .execute(
                "INSERT INTO tokens (hash, \"user\", label, created, expires) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (hash) DO NOTHING",
                &[&token.hash, &token.user, &token.label, &token.created, &token.expires],
            )
            .await
            .map_err(pg_error)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "a token with this hash exists".to_owned(),
            ));
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn find_token(&self, hash: &str, now: Millis) -> Result<Option<store::TokenRow>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT hash, \"user\", label, created, expires FROM tokens
                 WHERE hash = $1 AND (expires IS NULL OR expires > $2)",
                &[&hash, &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|r| store::TokenRow {
            hash: r.get(0),
            user: r.get(1),
            label: r.get(2),
            created: r.get(3),
            expires: r.get(4),
        }))
    }

    async fn due_summary(&self, now: Millis) -> Result<Vec<store::DueAction>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT action,
                    count(*) FILTER (WHERE next_attempt <= $1 AND (lease_until IS NULL OR lease_until <= $1)),
                    min(next_attempt) FILTER (WHERE next_attempt <= $1 AND (lease_until IS NULL OR lease_until <= $1)),
                    min(greatest(next_attempt, coalesce(lease_until, 0))) FILTER (WHERE next_attempt > $1 OR lease_until > $1)
                 FROM outbox WHERE state = 'pending' GROUP BY action ORDER BY action",
                &[&now],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| store::DueAction {
                action: r.get(0),
                due: r.get::<_, i64>(1) as u64,
                oldest_due: r.get(2),
                next_at: r.get(3),
            })
            .collect())
    }

    async fn attempts(
        &self,
        notification_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>> {
        let client = self.client().await?;
        let limit = if limit == 0 { i64::MAX } else { limit as i64 };
        let columns = "a.action, a.endpoint, a.started, a.duration_ms, a.http_status, a.delivered, a.reason, a.notification_ids";
        let rows = match notification_id {
            Some(id) => client
                .query(
                    &format!(
                        "SELECT {columns} FROM attempt_notifications n JOIN attempts a ON a.seq = n.attempt_seq
                         WHERE n.notification_id = $1 ORDER BY a.seq DESC LIMIT $2"
                    ),
                    &[&id, &limit],
                )
                .await,
            None => {
                client
                    .query(&format!("SELECT {columns} FROM attempts a ORDER BY a.seq DESC LIMIT $1"), &[&limit])
                    .await
            }
        }
        .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                let status: Option<i32> = row.get(4);
                let ids: String = row.get(7);
                AttemptRecord {
                    action: row.get(0),
                    endpoint: row.get(1),
                    started: row.get(2),
                    duration_ms: row.get(3),
                    http_status: status.and_then(|s| u16::try_from(s).ok()),
                    delivered: row.get(5),
                    reason: row.get(6),
                    notification_ids: serde_json::from_str(&ids).unwrap_or_default(),
                }
            })
            .collect())
    }
}

#[async_trait]
impl InboxStore for PgStore {
    async fn store_received(&self, batch: Vec<ReceivedNotification>) -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let insert = tx
            .prepare(
                "INSERT INTO inbox (id, route, organization_id, action_id, object_type, record_id, version, fields,
                 received, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let mut stored = 0;
        for n in &batch {
            let params: [&(dyn ToSql + Sync); 9] = [
                &n.id,
                &n.route,
                &n.organization_id,
                &n.action_id,
                &n.object_type,
                &n.record_id,
                &n.version,
                &n.fields,
                &n.received,
            ];
            stored += tx.execute(&insert, &params).await.map_err(pg_error)? as usize;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(stored)
    }

    async fn due_for_apply(&self, now: Millis, limit: usize) -> Result<Vec<InboxRow>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox WHERE state = 'received' AND next_attempt <= $1 ORDER BY seq LIMIT $2"
                ),
                &[&now, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?;
        let mut rows: Vec<InboxRow> = rows.iter().map(inbox_row).collect();
        store::order_for_apply(&mut rows);
        Ok(rows)
    }

    async fn next_apply_due(&self) -> Result<Option<Millis>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(next_attempt) FROM inbox WHERE state = 'received'",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn record_applied(
        &self,
        outcomes: Vec<(String, ApplyOutcome)>,
        now: Millis,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        for (id, outcome) in &outcomes {
            let (state, note) = match outcome {
                ApplyOutcome::Applied => (InboxState::Applied, None),
                ApplyOutcome::Stale(why) => (InboxState::Stale, Some(why.as_str())),
                ApplyOutcome::Empty => (InboxState::Empty, None),
            };
            tx.execute(
                "UPDATE inbox SET state = $2, last_error = $3, finished = $4, attempts = attempts + 1
                 WHERE id = $1 AND state = 'received'",
                &[id, &state.as_str(), &note, &now],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn record_apply_failure(
        &self,
        id: &str,
        reason: &str,
        next_attempt: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let client = self.client().await?;
        match next_attempt {
            Some(at) => {
                client
                    .execute(
                        "UPDATE inbox SET attempts = attempts + 1, next_attempt = $2, last_error = $3
                         WHERE id = $1 AND state = 'received'",
                        &[&id, &at, &reason],
                    )
                    .await
            }
            None => {
                client
                    .execute(
                        "UPDATE inbox SET state = 'quarantined', attempts = attempts + 1, last_error = $2, finished = $3
                         WHERE id = $1 AND state = 'received'",
                        &[&id, &reason, &now],
                    )
                    .await
            }
        }
        .map_err(pg_error)?;
        Ok(())
    }

    async fn get_received(&self, id: &str) -> Result<Option<InboxRow>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(inbox_row))
    }

    async fn list_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxRow>> {
        let client = self.client().await?;
        let states: Vec<String> = filter
            .states
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let limit = if filter.limit == 0 {
            i64::MAX
        } else {
            filter.limit as i64
        };
        let rows = client
            .query(
                &format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox WHERE ($1::text IS NULL OR route = $1)
                     AND (cardinality($2::text[]) = 0 OR state = ANY($2)) ORDER BY seq LIMIT $3"
                ),
                &[&filter.route, &states, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(inbox_row).collect())
    }

    async fn replay(&self, ids: &[String], now: Millis) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE inbox SET state = 'received', next_attempt = $2, finished = NULL WHERE id = ANY($1)",
                &[&ids, &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(n as usize)
    }

    async fn inbox_counts(&self) -> Result<InboxCounts> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT state, count(*) FROM inbox GROUP BY state", &[])
            .await
            .map_err(pg_error)?;
        Ok(InboxCounts::from_rows(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))),
        ))
    }

    async fn newest_applied_version(
        &self,
        route: &str,
        object_type: &str,
        record_id: &str,
    ) -> Result<Option<Millis>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT max(version) FROM inbox
                 WHERE route = $1 AND object_type = $2 AND record_id = $3 AND state = 'applied'",
                &[&route, &object_type, &record_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    async fn quarantine(&self, ids: &[String], reason: &str, now: Millis) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE inbox SET state = 'quarantined', last_error = $2, finished = $3
                 WHERE id = ANY($1) AND state = 'received'",
                &[&ids, &reason, &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`), in a schema of its own.
    pub fn test_url() -> String {
        std::env::var("CASEWIRE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    fn fresh_schema() -> String {
        format!("cw_test_{}_{}", std::process::id(), rand::random::<u32>())
    }

    async fn drop_schema(schema: &str) {
        let (client, connection) = tokio_postgres::connect(&test_url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn backend_passes_the_store_conformance_suite() {
        let schema = fresh_schema();
        let store = PgStore::open(&test_url(), Some(&schema))
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        store::conformance::run_all(&store).await;
        drop_schema(&schema).await;
    }

    #[tokio::test]
    async fn concurrent_claims_never_hand_out_a_notification_twice() {
        let schema = fresh_schema();
        let store = PgStore::open(&test_url(), Some(&schema)).await.unwrap();
        let notifications = (0..200)
            .map(|i| store::NewNotification {
                id: format!("04lC{i:05}"),
                action: "a".into(),
                endpoint: "http://127.0.0.1:9/".into(),
                object: "Case".into(),
                record_id: "500C".into(),
                snapshot: "{}".into(),
                created: 1,
            })
            .collect();
        store
            .save_record(RecordWrite {
                object: "Case".into(),
                id: "500C".into(),
                data: "{}".into(),
                deleted: false,
                expected_version: None,
                notifications,
                now: 1,
            })
            .await
            .unwrap();
        // Several "nodes" claim at once; SKIP LOCKED must keep their claims disjoint.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim("a", 10, 1_000_000, 7).await.unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|n| n.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(total, 200, "every notification claimed");
        assert_eq!(all.len(), 200, "none claimed twice");
        drop_schema(&schema).await;
    }

    #[tokio::test]
    async fn a_commit_with_notifications_wakes_listeners() {
        let schema = fresh_schema();
        let store = PgStore::open(&test_url(), Some(&schema)).await.unwrap();
        let signal = Arc::new(Notify::new());
        let listener = store.listen_outbox(signal.clone());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        store
            .save_record(RecordWrite {
                object: "Case".into(),
                id: "500N".into(),
                data: "{}".into(),
                deleted: false,
                expected_version: None,
                notifications: vec![store::NewNotification {
                    id: "04lN1".into(),
                    action: "a".into(),
                    endpoint: "http://127.0.0.1:9/".into(),
                    object: "Case".into(),
                    record_id: "500N".into(),
                    snapshot: "{}".into(),
                    created: 1,
                }],
                now: 1,
            })
            .await
            .unwrap();
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), signal.notified()).await;
        assert!(woke.is_ok(), "NOTIFY reached the listener");
        listener.abort();
        drop_schema(&schema).await;
    }
}
