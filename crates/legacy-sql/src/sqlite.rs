//! A legacy SQLite database as the target.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use inbox::{Adapter, ApplyError, Pending};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use store::ApplyOutcome;

use crate::{Conversion, SqlAdapterConfig, SqlAdapterError, SqlValue, convert};

const LEDGER_DDL: &str = "
    CREATE TABLE IF NOT EXISTS casewire_ledger (
        notification_id TEXT PRIMARY KEY,
        object_type     TEXT NOT NULL,
        record_id       TEXT,
        version         INTEGER,
        applied_at      TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS casewire_ledger_record ON casewire_ledger(object_type, record_id, version);
";

pub struct SqliteTarget {
    conn: Arc<Mutex<Connection>>,
    statements: Arc<Vec<String>>,
    convert: Arc<std::collections::BTreeMap<String, Conversion>>,
    empty_as_null: bool,
}

impl SqliteTarget {
    pub fn open(config: &SqlAdapterConfig) -> Result<Self, SqlAdapterError> {
        if config.statements.is_empty() {
            return Err(SqlAdapterError::NoStatements);
        }
        let open_err = |message: String| SqlAdapterError::Open {
            target: config.target.clone(),
            message,
        };
        let conn = Connection::open(&config.target).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(|e| open_err(e.to_string()))?;
        for (i, sql) in config.setup.iter().enumerate() {
            conn.execute_batch(sql)
                .map_err(|e| SqlAdapterError::Setup {
                    index: i + 1,
                    message: e.to_string(),
                })?;
        }
        conn.execute_batch(LEDGER_DDL)
            .map_err(|e| open_err(e.to_string()))?;
        // Preparing now reports syntax errors and missing tables at start, not at the first delivery.
        for (i, sql) in config.statements.iter().enumerate() {
            conn.prepare(sql).map_err(|e| SqlAdapterError::Statement {
                index: i + 1,
                message: e.to_string(),
            })?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            statements: Arc::new(config.statements.clone()),
            convert: Arc::new(config.convert.clone()),
            empty_as_null: config.empty_as_null,
        })
    }

    fn apply_blocking(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = classify(&e);
            return batch.iter().map(|_| Err(err.clone())).collect();
        }
        let mut results: Vec<Result<ApplyOutcome, ApplyError>> = Vec::with_capacity(batch.len());
        for pending in batch {
            let result = conn
                .execute_batch("SAVEPOINT notification")
                .map_err(|e| classify(&e))
                .and_then(|()| self.apply_one(&conn, pending));
            match &result {
                Ok(_) => {
                    let _ = conn.execute_batch("RELEASE notification");
                }
                Err(_) => {
                    let _ = conn.execute_batch("ROLLBACK TO notification; RELEASE notification");
                }
            }
            results.push(result);
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            let err = classify(&e);
            return batch.iter().map(|_| Err(err.clone())).collect();
        }
        results
    }

    fn apply_one(&self, conn: &Connection, p: &Pending) -> Result<ApplyOutcome, ApplyError> {
        let already: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM casewire_ledger WHERE notification_id = ?1")
            .and_then(|mut s| s.query_row([&p.id], |r| r.get(0)).optional())
            .map_err(|e| classify(&e))?;
        if already.is_some() {
            // Applied by an earlier attempt whose bookkeeping in the inbox did not survive.
            return Ok(ApplyOutcome::Applied);
        }
        if let Some(version) = p.version {
            let newest: Option<i64> = conn
                .prepare_cached(
                    "SELECT max(version) FROM casewire_ledger WHERE object_type = ?1 AND record_id IS ?2",
                )
                .and_then(|mut s| s.query_row(params![p.object_type, p.record_id], |r| r.get(0)))
                .map_err(|e| classify(&e))?;
            if let Some(newest) = newest.filter(|n| *n > version) {
                let reason = inbox::stale_reason(version, newest);
                record_ledger(conn, p)?;
                return Ok(ApplyOutcome::Stale(reason));
            }
        }
        for sql in self.statements.iter() {
            let mut stmt = conn.prepare_cached(sql).map_err(|e| classify(&e))?;
            for index in 1..=stmt.parameter_count() {
                let Some(name) = stmt
                    .parameter_name(index)
                    .map(|n| n.trim_start_matches([':', '@', '$']).to_owned())
                else {
                    return Err(ApplyError::permanent(
                        "positional parameters (?) are not supported; use :FieldName",
                    ));
                };
                let value = self.value_for(p, &name)?;
                bind(&mut stmt, index, value).map_err(|e| classify(&e))?;
            }
            stmt.raw_execute().map_err(|e| classify(&e))?;
        }
        record_ledger(conn, p)?;
        Ok(ApplyOutcome::Applied)
    }

    fn value_for(&self, p: &Pending, name: &str) -> Result<SqlValue, ApplyError> {
        let text = match name {
            "notification_id" => Some(p.id.as_str()),
            "organization_id" => Some(p.organization_id.as_str()),
            "action_id" => Some(p.action_id.as_str()),
            "object_type" => Some(p.object_type.as_str()),
            "record_id" => p.record_id.as_deref(),
            field => p.field(field),
        };
        let conversion = self.convert.get(name).copied().unwrap_or_default();
        convert(name, text, conversion, self.empty_as_null).map_err(ApplyError::permanent)
    }
}

fn record_ledger(conn: &Connection, p: &Pending) -> Result<(), ApplyError> {
    conn.prepare_cached(
        "INSERT INTO casewire_ledger(notification_id, object_type, record_id, version, applied_at)
         VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    )
    .and_then(|mut s| s.execute(params![p.id, p.object_type, p.record_id, p.version]))
    .map_err(|e| classify(&e))?;
    Ok(())
}

fn bind(
    stmt: &mut rusqlite::CachedStatement<'_>,
    index: usize,
    value: SqlValue,
) -> rusqlite::Result<()> {
    match value {
        SqlValue::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null),
        SqlValue::Text(s) => stmt.raw_bind_parameter(index, s),
        SqlValue::Integer(i) => stmt.raw_bind_parameter(index, i),
        SqlValue::Real(f) => stmt.raw_bind_parameter(index, f),
        SqlValue::Bool(b) => stmt.raw_bind_parameter(index, b as i64),
        SqlValue::Timestamp(t) => stmt.raw_bind_parameter(
            index,
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    }
}

/// Lock and I/O trouble passes; anything else (constraint, type, missing table) will not pass by
/// itself and goes to quarantine, from where an operator can replay it after fixing the cause.
fn classify(e: &rusqlite::Error) -> ApplyError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
            ) =>
        {
            ApplyError::retry(format!("legacy database: {e}"))
        }
        _ => ApplyError::permanent(format!("legacy database: {e}")),
    }
}

#[async_trait]
impl Adapter for SqliteTarget {
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        let this = SqliteTarget {
            conn: Arc::clone(&self.conn),
            statements: Arc::clone(&self.statements),
            convert: Arc::clone(&self.convert),
            empty_as_null: self.empty_as_null,
        };
        let batch = batch.to_vec();
        let n = batch.len();
        match tokio::task::spawn_blocking(move || this.apply_blocking(&batch)).await {
            Ok(results) => results,
            Err(e) => (0..n)
                .map(|_| Err(ApplyError::retry(format!("apply task failed: {e}"))))
                .collect(),
        }
    }

    fn tracks_versions(&self) -> bool {
        true
    }
}
