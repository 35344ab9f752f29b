//! Inbox side: received notifications and their apply state.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use store::{
    ApplyOutcome, InboxCounts, InboxFilter, InboxRow, InboxState, InboxStore, Millis,
    ReceivedNotification, Result,
};

use crate::{SqliteStore, collect, sql_error};

const INBOX_COLUMNS: &str = "id, route, organization_id, action_id, object_type, record_id, version, fields, \
                             received, state, attempts, next_attempt, last_error, finished";

fn inbox_row(row: &Row<'_>) -> rusqlite::Result<InboxRow> {
    let state: String = row.get(9)?;
    Ok(InboxRow {
        id: row.get(0)?,
        route: row.get(1)?,
        organization_id: row.get(2)?,
        action_id: row.get(3)?,
        object_type: row.get(4)?,
        record_id: row.get(5)?,
        version: row.get(6)?,
        fields: row.get(7)?,
        received: row.get(8)?,
        state: InboxState::parse(&state).unwrap_or(InboxState::Received),
        attempts: row.get(10)?,
        next_attempt: row.get(11)?,
        last_error: row.get(12)?,
        finished: row.get(13)?,
    })
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn store_received(&self, batch: Vec<ReceivedNotification>) -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO inbox(id, route, organization_id, action_id, object_type, record_id, version,
                     fields, received, next_attempt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                     ON CONFLICT(id) DO NOTHING",
                )
                .map_err(sql_error)?;
            let mut stored = 0;
            for n in &batch {
                stored += stmt
                    .execute(params![
                        n.id,
                        n.route,
                        n.organization_id,
                        n.action_id,
                        n.object_type,
                        n.record_id,
                        n.version,
                        n.fields,
                        n.received
                    ])
                    .map_err(sql_error)?;
            }
            Ok(stored)
        })
        .await
    }

    async fn due_for_apply(&self, now: Millis, limit: usize) -> Result<Vec<InboxRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox WHERE state = 'received' AND next_attempt <= ?1
                     ORDER BY seq LIMIT ?2"
                ))
                .map_err(sql_error)?;
            let mut rows = collect(stmt.query_map(params![now, limit as i64], inbox_row).map_err(sql_error)?)?;
            store::order_for_apply(&mut rows);
            Ok(rows)
        })
        .await
    }

    async fn next_apply_due(&self) -> Result<Option<Millis>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT min(next_attempt) FROM inbox WHERE state = 'received'",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn record_applied(
        &self,
        outcomes: Vec<(String, ApplyOutcome)>,
        now: Millis,
    ) -> Result<()> {
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE inbox SET state = ?2, last_error = ?3, finished = ?4, attempts = attempts + 1
                     WHERE id = ?1 AND state = 'received'",
                )
                .map_err(sql_error)?;
            for (id, outcome) in &outcomes {
                let (state, note) = match outcome {
                    ApplyOutcome::Applied => (InboxState::Applied, None),
                    ApplyOutcome::Stale(why) => (InboxState::Stale, Some(why.as_str())),
                    ApplyOutcome::Empty => (InboxState::Empty, None),
                };
                stmt.execute(params![id, state.as_str(), note, now]).map_err(sql_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn record_apply_failure(
        &self,
        id: &str,
        reason: &str,
        next_attempt: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.write(move |conn| {
            match next_attempt {
                Some(at) => conn.execute(
                    "UPDATE inbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3
                     WHERE id = ?1 AND state = 'received'",
                    params![id, at, reason],
                ),
                None => conn.execute(
                    "UPDATE inbox SET state = 'quarantined', attempts = attempts + 1, last_error = ?2, finished = ?3
                     WHERE id = ?1 AND state = 'received'",
                    params![id, reason, now],
                ),
            }
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn get_received(&self, id: &str) -> Result<Option<InboxRow>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE id = ?1"),
                [id],
                inbox_row,
            )
            .optional()
            .map_err(sql_error)
        })
        .await
    }

    async fn list_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxRow>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(route) = &filter.route {
                sql.push_str(" AND route = ?");
                args.push(route.clone().into());
            }
            if !filter.states.is_empty() {
                let marks = vec!["?"; filter.states.len()].join(",");
                sql.push_str(&format!(" AND state IN ({marks})"));
                args.extend(filter.states.iter().map(|s| s.as_str().to_owned().into()));
            }
            sql.push_str(" ORDER BY seq LIMIT ?");
            args.push(
                (if filter.limit == 0 {
                    i64::MAX
                } else {
                    filter.limit as i64
                })
                .into(),
            );
            let mut stmt = conn.prepare(&sql).map_err(sql_error)?;
            collect(
                stmt.query_map(params_from_iter(args.iter()), inbox_row)
                    .map_err(sql_error)?,
            )
        })
        .await
    }

    async fn replay(&self, ids: &[String], now: Millis) -> Result<usize> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE inbox SET state = 'received', next_attempt = ?2, finished = NULL WHERE id = ?1",
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

    async fn inbox_counts(&self) -> Result<InboxCounts> {
        self.read(|conn| Ok(InboxCounts::from_rows(crate::state_counts(conn, "inbox")?)))
            .await
    }

    async fn newest_applied_version(
        &self,
        route: &str,
        object_type: &str,
        record_id: &str,
    ) -> Result<Option<Millis>> {
        let (route, object_type, record_id) = (
            route.to_owned(),
            object_type.to_owned(),
            record_id.to_owned(),
        );
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT max(version) FROM inbox
                 WHERE route = ?1 AND object_type = ?2 AND record_id = ?3 AND state = 'applied'",
            )
            .and_then(|mut s| s.query_row(params![route, object_type, record_id], |r| r.get(0)))
            .map_err(sql_error)
        })
        .await
    }

    async fn quarantine(&self, ids: &[String], reason: &str, now: Millis) -> Result<usize> {
        let (ids, reason) = (ids.to_vec(), reason.to_owned());
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE inbox SET state = 'quarantined', last_error = ?2, finished = ?3
                     WHERE id = ?1 AND state = 'received'",
                )
                .map_err(sql_error)?;
            let mut changed = 0;
            for id in &ids {
                changed += stmt.execute(params![id, reason, now]).map_err(sql_error)?;
            }
            Ok(changed)
        })
        .await
    }
}
