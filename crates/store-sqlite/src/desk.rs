//! Desk side: records, the outbox, delivery state and the attempt log.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use store::{
    AfterAttempt, AttemptRecord, DeskStore, DueAction, Millis, NotificationState, QueueCounts,
    QueueFilter, QueuedNotification, RecordRow, RecordWrite, Result, StoreError, TokenRow,
};

use crate::{SqliteStore, collect, sql_error};

const OUTBOX_COLUMNS: &str = "id, action, endpoint, object, record_id, snapshot, created, state, attempts, \
                              next_attempt, last_error, finished, note";

fn outbox_row(row: &Row<'_>) -> rusqlite::Result<QueuedNotification> {
    outbox_row_at(row, 0)
}

/// Reads the `OUTBOX_COLUMNS` starting at column `base` (claims put `seq` before them).
fn outbox_row_at(row: &Row<'_>, base: usize) -> rusqlite::Result<QueuedNotification> {
    let state: String = row.get(base + 7)?;
    Ok(QueuedNotification {
        id: row.get(base)?,
        action: row.get(base + 1)?,
        endpoint: row.get(base + 2)?,
        object: row.get(base + 3)?,
        record_id: row.get(base + 4)?,
        snapshot: row.get(base + 5)?,
        created: row.get(base + 6)?,
        state: NotificationState::parse(&state).unwrap_or(NotificationState::Pending),
        attempts: row.get(base + 8)?,
        next_attempt: row.get(base + 9)?,
        last_error: row.get(base + 10)?,
        finished: row.get(base + 11)?,
        note: row.get(base + 12)?,
    })
}

fn record_row(row: &Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: row.get(0)?,
        object: row.get(1)?,
        data: row.get(2)?,
        deleted: row.get(3)?,
        version: row.get(4)?,
    })
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

fn save(conn: &Connection, w: &RecordWrite) -> Result<i64> {
    let version = match w.expected_version {
        None => {
            let inserted = conn
                .execute(
                    "INSERT INTO records(id, object, data, deleted, version, created, modified)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5) ON CONFLICT(id) DO NOTHING",
                    params![w.id, w.object, w.data, w.deleted, w.now],
                )
                .map_err(sql_error)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "record {} exists already",
                    w.id
                )));
            }
            1
        }
        Some(expected) => {
            let updated = conn
                .execute(
                    "UPDATE records SET data = ?1, deleted = ?2, version = version + 1, modified = ?3
                     WHERE id = ?4 AND version = ?5",
                    params![w.data, w.deleted, w.now, w.id, expected],
                )
                .map_err(sql_error)?;
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
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO outbox(id, action, endpoint, object, record_id, snapshot, created, next_attempt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )
            .map_err(sql_error)?;
        for n in &w.notifications {
            stmt.execute(params![
                n.id,
                n.action,
                n.endpoint,
                n.object,
                n.record_id,
                n.snapshot,
                n.created
            ])
            .map_err(sql_error)?;
        }
    }
    Ok(version)
}

fn finish(
    conn: &Connection,
    attempt: &AttemptRecord,
    outcomes: &[(String, AfterAttempt)],
) -> Result<()> {
    let ids_json = serde_json::to_string(&attempt.notification_ids)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO attempts(action, endpoint, started, duration_ms, http_status, delivered, reason, notification_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_error)?
    .execute(params![
        attempt.action,
        attempt.endpoint,
        attempt.started,
        attempt.duration_ms,
        attempt.http_status,
        attempt.delivered,
        attempt.reason,
        ids_json
    ])
    .map_err(sql_error)?;
    let attempt_seq = conn.last_insert_rowid();
    let mut link = conn
        .prepare_cached("INSERT OR IGNORE INTO attempt_notifications(notification_id, attempt_seq) VALUES (?1, ?2)")
        .map_err(sql_error)?;
    for id in &attempt.notification_ids {
        link.execute(params![id, attempt_seq]).map_err(sql_error)?;
    }
    let finished = attempt.started + attempt.duration_ms;
    let mut delivered = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished = ?2, lease_until = NULL,
             last_error = NULL WHERE id = ?1 AND state = 'pending'",
        )
        .map_err(sql_error)?;
    let mut retry = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, lease_until = NULL, last_error = ?3
             WHERE id = ?1 AND state = 'pending'",
        )
        .map_err(sql_error)?;
    let mut expire = conn
        .prepare_cached(
            "UPDATE outbox SET state = ?2, attempts = attempts + 1, finished = ?3, lease_until = NULL, last_error = ?4
             WHERE id = ?1 AND state = 'pending'",
        )
        .map_err(sql_error)?;
    for (id, after) in outcomes {
        match after {
            AfterAttempt::Delivered => delivered.execute(params![id, finished]),
            AfterAttempt::Retry { next_attempt } => {
                retry.execute(params![id, next_attempt, attempt.reason])
            }
            AfterAttempt::Expired { keep } => {
                let state = if *keep { "failed" } else { "dropped" };
                let reason = format!(
                    "expired: {}",
                    attempt
                        .reason
                        .as_deref()
                        .unwrap_or("not delivered before the expiry")
                );
                expire.execute(params![id, state, finished, reason])
            }
        }
        .map_err(sql_error)?;
    }
    Ok(())
}

#[async_trait]
impl DeskStore for SqliteStore {
    async fn next_sequence(&self, name: &str) -> Result<i64> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.query_row(
                "INSERT INTO sequences(name, value) VALUES (?1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                [name],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn get_record(&self, object: &str, id: &str) -> Result<Option<RecordRow>> {
        let (object, id) = (object.to_owned(), id.to_owned());
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, object, data, deleted, version FROM records WHERE id = ?1 AND object = ?2")
                .map_err(sql_error)?
                .query_row(params![id, object], record_row)
                .optional()
                .map_err(sql_error)
        })
        .await
    }

    async fn get_records(&self, ids: &[String]) -> Result<Vec<RecordRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |conn| {
            let sql = format!(
                "SELECT id, object, data, deleted, version FROM records WHERE id IN ({})",
                placeholders(ids.len())
            );
            let mut stmt = conn.prepare(&sql).map_err(sql_error)?;
            collect(
                stmt.query_map(params_from_iter(ids.iter()), record_row)
                    .map_err(sql_error)?,
            )
        })
        .await
    }

    async fn save_record(&self, write: RecordWrite) -> Result<i64> {
        self.write(move |conn| save(conn, &write)).await
    }

    async fn claim(
        &self,
        action: &str,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<QueuedNotification>> {
        let action = action.to_owned();
        self.write(move |conn| {
            let sql = format!(
                "UPDATE outbox SET lease_until = ?3 WHERE seq IN (
                    SELECT seq FROM outbox WHERE state = 'pending' AND action = ?1 AND next_attempt <= ?2
                    AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY next_attempt, seq LIMIT ?4)
                 RETURNING seq, {OUTBOX_COLUMNS}"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
            let mut rows: Vec<(i64, QueuedNotification)> = collect(
                stmt.query_map(params![action, now, lease_until, limit as i64], |row| {
                    Ok((row.get(0)?, outbox_row_at(row, 1)?))
                })
                .map_err(sql_error)?,
            )?;
            // RETURNING gives no order; delivery sends oldest first.
            rows.sort_by_key(|(seq, _)| *seq);
            Ok(rows.into_iter().map(|(_, n)| n).collect())
        })
        .await
    }

    async fn finish_attempt(
        &self,
        attempt: AttemptRecord,
        outcomes: Vec<(String, AfterAttempt)>,
    ) -> Result<()> {
        self.write(move |conn| finish(conn, &attempt, &outcomes))
            .await
    }

    async fn release(&self, ids: &[String]) -> Result<()> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE outbox SET lease_until = NULL WHERE id = ?1 AND state = 'pending'",
                )
                .map_err(sql_error)?;
            for id in &ids {
                stmt.execute([id]).map_err(sql_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueuedNotification>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(action) = &filter.action {
                sql.push_str(" AND action = ?");
                args.push(action.clone().into());
            }
            if let Some(endpoint) = &filter.endpoint {
                sql.push_str(" AND endpoint = ?");
                args.push(endpoint.clone().into());
            }
            if !filter.states.is_empty() {
                sql.push_str(&format!(
                    " AND state IN ({})",
                    placeholders(filter.states.len())
                ));
                args.extend(filter.states.iter().map(|s| s.as_str().to_owned().into()));
            }
            if let Some(before) = filter.created_before {
                sql.push_str(" AND created <= ?");
                args.push(before.into());
            }
            if let Some(after) = filter.created_after {
                sql.push_str(" AND created >= ?");
                args.push(after.into());
            }
            sql.push_str(" ORDER BY seq LIMIT ?");
            let limit = if filter.limit == 0 {
                i64::MAX
            } else {
                filter.limit as i64
            };
            args.push(limit.into());
            let mut stmt = conn.prepare(&sql).map_err(sql_error)?;
            collect(
                stmt.query_map(params_from_iter(args.iter()), outbox_row)
                    .map_err(sql_error)?,
            )
        })
        .await
    }

    async fn get_notification(&self, id: &str) -> Result<Option<QueuedNotification>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"),
                [id],
                outbox_row,
            )
            .optional()
            .map_err(sql_error)
        })
        .await
    }

    async fn retry_now(&self, ids: &[String], now: Millis) -> Result<usize> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE outbox SET state = 'pending', next_attempt = ?2, finished = NULL,
                     created = CASE WHEN state = 'failed' THEN ?2 ELSE created END
                     WHERE id = ?1 AND state IN ('pending', 'failed')",
                )
                .map_err(sql_error)?;
            let mut changed = 0;
            for id in &ids {
                changed += stmt.execute(params![id, now]).map_err(sql_error)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn delete_notifications(&self, ids: &[String], who: &str, now: Millis) -> Result<usize> {
        let ids = ids.to_vec();
        let note = format!("deleted by {who}");
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE outbox SET state = 'deleted', finished = ?2, note = ?3, lease_until = NULL
                     WHERE id = ?1 AND state IN ('pending', 'failed')",
                )
                .map_err(sql_error)?;
            let mut changed = 0;
            for id in &ids {
                changed += stmt.execute(params![id, now, note]).map_err(sql_error)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn queue_counts(&self) -> Result<QueueCounts> {
        self.read(|conn| Ok(QueueCounts::from_rows(crate::state_counts(conn, "outbox")?)))
            .await
    }

    async fn attempts(
        &self,
        notification_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>> {
        let notification_id = notification_id.map(str::to_owned);
        self.read(move |conn| {
            let columns = "a.action, a.endpoint, a.started, a.duration_ms, a.http_status, a.delivered, a.reason, a.notification_ids";
            let limit = if limit == 0 { i64::MAX } else { limit as i64 };
            let map = |row: &Row<'_>| -> rusqlite::Result<(AttemptRecord, String)> {
                Ok((
                    AttemptRecord {
                        action: row.get(0)?,
                        endpoint: row.get(1)?,
                        started: row.get(2)?,
                        duration_ms: row.get(3)?,
                        http_status: row.get(4)?,
                        delivered: row.get(5)?,
                        reason: row.get(6)?,
                        notification_ids: Vec::new(),
                    },
                    row.get(7)?,
                ))
            };
            let rows = match &notification_id {
                Some(id) => {
                    let mut stmt = conn
                        .prepare(&format!(
                            "SELECT {columns} FROM attempt_notifications n JOIN attempts a ON a.seq = n.attempt_seq
                             WHERE n.notification_id = ?1 ORDER BY a.seq DESC LIMIT ?2"
                        ))
                        .map_err(sql_error)?;
                    collect(stmt.query_map(params![id, limit], map).map_err(sql_error)?)?
                }
                None => {
                    let mut stmt = conn
                        .prepare(&format!("SELECT {columns} FROM attempts a ORDER BY a.seq DESC LIMIT ?1"))
                        .map_err(sql_error)?;
                    collect(stmt.query_map([limit], map).map_err(sql_error)?)?
                }
            };
            Ok(rows
                .into_iter()
                .map(|(mut attempt, ids)| {
                    attempt.notification_ids = serde_json::from_str(&ids).unwrap_or_default();
                    attempt
                })
                .collect())
        })
        .await
    }

    async fn due_summary(&self, now: Millis) -> Result<Vec<DueAction>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT action,
                        count(*) FILTER (WHERE next_attempt <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)),
                        min(next_attempt) FILTER (WHERE next_attempt <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)),
                        min(max(next_attempt, coalesce(lease_until, 0))) FILTER (WHERE next_attempt > ?1 OR lease_until > ?1)
                     FROM outbox WHERE state = 'pending' GROUP BY action ORDER BY action",
                )
                .map_err(sql_error)?;
            collect(
                stmt.query_map([now], |r| {
                    Ok(DueAction {
                        action: r.get(0)?,
                        due: r.get::<_, i64>(1)? as u64,
                        oldest_due: r.get(2)?,
                        next_at: r.get(3)?,
                    })
                })
                .map_err(sql_error)?,
            )
        })
        .await
    }

    async fn list_records(
        &self,
        object: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecordRow>> {
        let (object, after) = (object.to_owned(), after.unwrap_or("").to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, object, data, deleted, version FROM records
                     WHERE object = ?1 AND deleted = 0 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(sql_error)?;
            collect(
                stmt.query_map(params![object, after, limit], record_row)
                    .map_err(sql_error)?,
            )
        })
        .await
    }

    async fn put_token(&self, token: TokenRow) -> Result<()> {
        self.write(move |conn| {
            // Expired tokens are useless; dropping them here keeps the table small without a sweeper.
            conn.execute(
                "DELETE FROM tokens WHERE expires IS NOT NULL AND expires < ?1",
                [token.created],
            )
            .map_err(sql_error)?;
            let inserted = conn
                .execute(
                    "INSERT INTO tokens(hash, user, label, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(hash) DO NOTHING",
                    params![token.hash, token.user, token.label, token.created, token.expires],
                )
                .map_err(sql_error)?;
            if inserted == 0 {
                return Err(StoreError::Conflict("a token with this hash exists".to_owned()));
            }
            Ok(())
        })
        .await
    }

    async fn find_token(&self, hash: &str, now: Millis) -> Result<Option<TokenRow>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT hash, user, label, created, expires FROM tokens
                 WHERE hash = ?1 AND (expires IS NULL OR expires > ?2)",
            )
            .map_err(sql_error)?
            .query_row(params![hash, now], |r| {
                Ok(TokenRow {
                    hash: r.get(0)?,
                    user: r.get(1)?,
                    label: r.get(2)?,
                    created: r.get(3)?,
                    expires: r.get(4)?,
                })
            })
            .optional()
            .map_err(sql_error)
        })
        .await
    }
}
