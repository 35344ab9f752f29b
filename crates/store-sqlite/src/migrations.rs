//! Schema migrations, applied in order on open. A migration, once released, never changes: add a new one.

use rusqlite::Connection;
use store::StoreError;

use crate::sql_error;

const MIGRATIONS: &[&str] = &[
    // 1: desk records, outbox, attempt log; inbox.
    r#"
    CREATE TABLE sequences (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE records (
        id       TEXT PRIMARY KEY,
        object   TEXT NOT NULL,
        data     TEXT NOT NULL,
        deleted  INTEGER NOT NULL DEFAULT 0,
        version  INTEGER NOT NULL,
        created  INTEGER NOT NULL,
        modified INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        action       TEXT NOT NULL,
        endpoint     TEXT NOT NULL,
        object       TEXT NOT NULL,
        record_id    TEXT NOT NULL,
        snapshot     TEXT NOT NULL,
        created      INTEGER NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending',
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        lease_until  INTEGER,
        last_error   TEXT,
        finished     INTEGER,
        note         TEXT
    );
    CREATE INDEX outbox_due ON outbox(action, next_attempt) WHERE state = 'pending';
    CREATE INDEX outbox_state ON outbox(state, created);
    CREATE TABLE attempts (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        action           TEXT NOT NULL,
        endpoint         TEXT NOT NULL,
        started          INTEGER NOT NULL,
        duration_ms      INTEGER NOT NULL,
        http_status      INTEGER,
        delivered        INTEGER NOT NULL,
        reason           TEXT,
        notification_ids TEXT NOT NULL
    );
    CREATE TABLE attempt_notifications (
        notification_id TEXT NOT NULL,
        attempt_seq     INTEGER NOT NULL REFERENCES attempts(seq),
        PRIMARY KEY (notification_id, attempt_seq)
    ) WITHOUT ROWID;
    CREATE TABLE inbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL UNIQUE,
        route           TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        action_id       TEXT NOT NULL,
        object_type     TEXT NOT NULL,
        record_id       TEXT,
        version         INTEGER,
        fields          TEXT NOT NULL,
        received        INTEGER NOT NULL,
        state           TEXT NOT NULL DEFAULT 'received',
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt    INTEGER NOT NULL,
        last_error      TEXT,
        finished        INTEGER
    );
    CREATE INDEX inbox_due ON inbox(next_attempt) WHERE state = 'received';
    CREATE INDEX inbox_state ON inbox(state, seq);
    "#,
    // 2: the newest applied version of a record, asked per notification by the applier.
    r#"
    CREATE INDEX inbox_record_versions ON inbox(route, object_type, record_id, version) WHERE state = 'applied';
    "#,
    // 3: scans of one object's records (SOQL), and API tokens stored by hash.
    r#"
    CREATE INDEX records_object ON records(object, id) WHERE deleted = 0;
    CREATE TABLE tokens (
        hash    TEXT PRIMARY KEY,
        user    TEXT NOT NULL,
        label   TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER
    );
    "#,
];

pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

pub(crate) fn apply(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(sql_error)?;
    let current: i64 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    if current > LATEST {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {current}, newer than this casewire ({LATEST}); upgrade casewire"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let tx = conn.unchecked_transaction().map_err(sql_error)?;
        tx.execute_batch(sql).map_err(sql_error)?;
        tx.execute(
            "INSERT INTO schema_migrations(version, applied_at) VALUES (?1, strftime('%s','now'))",
            [version],
        )
        .map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
    }
    Ok(())
}
