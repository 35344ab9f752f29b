//! The SQL adapter against real databases: a SQLite file and the PostgreSQL server on 127.0.0.1:5432
//! (trust auth, database `test`). Each PostgreSQL test works in a schema of its own, named after the
//! test and the process, so that tests running at the same time do not see each other's tables.

use std::collections::BTreeMap;

use inbox::Pending;
use legacy_sql::{Conversion, SqlAdapterConfig};
use store::ApplyOutcome;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn pending(
    id: &str,
    record: &str,
    version: Option<i64>,
    fields: &[(&str, Option<&str>)],
) -> Pending {
    let mut all = vec![("Id".to_owned(), Some(record.to_owned()))];
    all.extend(
        fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned))),
    );
    Pending {
        id: id.to_owned(),
        organization_id: "00D5g000004XyZaEAK".into(),
        action_id: "04k5g000000AbCdAAK".into(),
        object_type: "Case".into(),
        record_id: Some(record.to_owned()),
        version,
        fields: all,
    }
}

fn convert() -> BTreeMap<String, Conversion> {
    BTreeMap::from([
        ("IsClosed".to_owned(), Conversion::Boolean),
        ("ClosedDate".to_owned(), Conversion::Timestamp),
        ("Hours".to_owned(), Conversion::Real),
        ("Count".to_owned(), Conversion::Integer),
    ])
}

struct Pg {
    schema: String,
    client: tokio_postgres::Client,
}

impl Pg {
    async fn new(name: &str) -> Pg {
        let schema = format!("cw_sql_{name}_{}", std::process::id());
        let (client, connection) = tokio_postgres::connect(PG, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test starts it)");
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await
            .unwrap();
        Pg { schema, client }
    }

    /// The target URL: the test's schema first on the search path, so unqualified names land there.
    fn url(&self) -> String {
        format!("{PG}?options=-csearch_path%3D{}", self.schema)
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let sql = sql.replace("SCHEMA.", &format!("{}.", self.schema));
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect()
    }

    async fn drop(self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
    }
}

#[tokio::test]
async fn postgres_applies_with_conversions_exactly_once_and_in_version_order() {
    let pg = Pg::new("apply").await;
    let config = SqlAdapterConfig {
        target: pg.url(),
        setup: vec![
            "CREATE TABLE tickets (case_id text PRIMARY KEY, status text, is_closed boolean, closed_at timestamptz, \
             hours numeric(10,2), n integer, note varchar(20), missing text, changes integer NOT NULL DEFAULT 1)".into(),
        ],
        statements: vec![
            "INSERT INTO tickets (case_id, status, is_closed, closed_at, hours, n, note, missing) \
             VALUES (:Id, :Status, :IsClosed, :ClosedDate, :Hours, :Count, :Note, :NotSent) \
             ON CONFLICT (case_id) DO UPDATE SET status = excluded.status, is_closed = excluded.is_closed, \
             closed_at = excluded.closed_at, hours = excluded.hours, n = excluded.n, note = excluded.note, \
             changes = tickets.changes + 1 -- :NotAParameter".into(),
        ],
        convert: convert(),
        empty_as_null: true,
    };
    let adapter = legacy_sql::open(&config).await.unwrap();
    assert!(adapter.tracks_versions());

    let first = pending(
        "04l000000000001",
        "500000000000001",
        Some(2_000),
        &[
            ("Status", Some("Closed")),
            ("IsClosed", Some("true")),
            ("ClosedDate", Some("2024-03-14T09:26:53.120Z")),
            ("Hours", Some("1.5E1")),
            ("Count", Some("42")),
            ("Note", Some("")),
            ("Unused__c", Some("ignored")),
        ],
    );
    let older = pending(
        "04l000000000002",
        "500000000000001",
        Some(1_000),
        &[("Status", Some("New")), ("IsClosed", Some("false"))],
    );
    let results = adapter.apply(std::slice::from_ref(&first)).await;
    assert_eq!(results, vec![Ok(ApplyOutcome::Applied)]);
    let results = adapter.apply(&[first.clone(), older]).await;
    assert_eq!(results[0], Ok(ApplyOutcome::Applied), "a repeat is a no-op");
    match &results[1] {
        Ok(ApplyOutcome::Stale(why)) => assert_eq!(
            why,
            "version 1970-01-01T00:00:01.000Z is older than the applied version 1970-01-01T00:00:02.000Z"
        ),
        other => panic!("{other:?}"),
    }
    let rows = pg
        .rows(
            "SELECT status, is_closed::text, to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), \
             hours::text, n::text, note, missing, changes::text FROM SCHEMA.tickets",
        )
        .await;
    assert_eq!(
        rows,
        vec![vec![
            Some("Closed".into()),
            Some("true".into()),
            Some("2024-03-14T09:26:53.120".into()),
            Some("15.00".into()),
            Some("42".into()),
            None,
            None,
            Some("1".into()),
        ]],
        "applied once; empty and absent fields are NULL"
    );
    let ledger = pg
        .rows("SELECT notification_id, version::text FROM SCHEMA.casewire_ledger ORDER BY notification_id")
        .await;
    assert_eq!(
        ledger,
        vec![
            vec![Some("04l000000000001".into()), Some("2000".into())],
            vec![Some("04l000000000002".into()), Some("1000".into())],
        ]
    );
    pg.drop().await;
}

#[tokio::test]
async fn postgres_failures_are_permanent_or_retried_by_their_cause() {
    let pg = Pg::new("fail").await;
    let config = SqlAdapterConfig {
        target: pg.url(),
        setup: vec![
            "CREATE TABLE IF NOT EXISTS t (case_id text PRIMARY KEY, n integer CHECK (n < 10), at timestamptz)"
                .into(),
        ],
        statements: vec!["INSERT INTO t VALUES (:Id, :Count, :When)".into()],
        convert: BTreeMap::new(),
        empty_as_null: true,
    };
    let adapter = legacy_sql::open(&config).await.unwrap();
    let ok = pending(
        "04l00000000000A",
        "500000000000001",
        None,
        &[("Count", Some("1"))],
    );
    let violates = pending(
        "04l00000000000B",
        "500000000000002",
        None,
        &[("Count", Some("99"))],
    );
    let not_a_time = pending(
        "04l00000000000C",
        "500000000000003",
        None,
        &[("When", Some("soon"))],
    );
    let results = adapter.apply(&[ok, violates, not_a_time]).await;
    assert_eq!(results[0], Ok(ApplyOutcome::Applied));
    let e = results[1].clone().unwrap_err();
    assert!(e.permanent && e.reason.contains("23514"), "{e:?}");
    let e = results[2].clone().unwrap_err();
    assert!(
        e.permanent && e.reason.contains(":When") && e.reason.contains("\"soon\""),
        "{e:?}"
    );
    assert_eq!(
        pg.rows("SELECT case_id FROM SCHEMA.t").await,
        vec![vec![Some("500000000000001".into())]],
        "one bad notification does not undo the others"
    );
    assert_eq!(
        pg.rows("SELECT count(*)::text FROM SCHEMA.casewire_ledger")
            .await,
        vec![vec![Some("1".into())]],
        "the ledger holds only what took effect"
    );

    // Mistakes in the configuration show at start.
    let broken = SqlAdapterConfig {
        statements: vec!["INSERT INTO no_such_table VALUES (:Id)".into()],
        ..config.clone()
    };
    let err = legacy_sql::open(&broken).await.err().unwrap().to_string();
    assert!(
        err.contains("statement 1") && err.contains("no_such_table"),
        "{err}"
    );
    pg.drop().await;
}

#[tokio::test]
async fn postgres_unreachable_is_retried_not_lost() {
    // Nothing listens on this port: the adapter starts, and every apply asks for a retry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = SqlAdapterConfig {
        target: format!("postgres://postgres:pw@127.0.0.1:{port}/test"),
        setup: vec![],
        statements: vec!["SELECT :Id".into()],
        convert: BTreeMap::new(),
        empty_as_null: true,
    };
    let adapter = legacy_sql::open(&config).await.unwrap();
    let results = adapter
        .apply(&[pending("04l00000000000D", "500000000000001", None, &[])])
        .await;
    let e = results[0].clone().unwrap_err();
    assert!(!e.permanent, "{e:?}");
    assert!(
        e.reason.contains("unreachable") && !e.reason.contains("pw"),
        "{e:?}"
    );
}

#[tokio::test]
async fn sqlite_applies_exactly_once_and_skips_older_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("legacy.db");
    let config = SqlAdapterConfig {
        target: db.display().to_string(),
        setup: vec![
            "CREATE TABLE IF NOT EXISTS tickets (case_id TEXT PRIMARY KEY, status TEXT, is_closed INTEGER, closed_at TEXT, note TEXT, missing TEXT)".into(),
            "CREATE TABLE IF NOT EXISTS log (n INTEGER PRIMARY KEY, notification_id TEXT)".into(),
        ],
        statements: vec![
            "INSERT INTO log (notification_id) VALUES (:notification_id)".into(),
            "INSERT INTO tickets VALUES (:Id, :Status, :IsClosed, :ClosedDate, :Note, :NotSent) ON CONFLICT (case_id) DO UPDATE SET status = excluded.status".into(),
        ],
        convert: convert(),
        empty_as_null: true,
    };
    let adapter = legacy_sql::open(&config).await.unwrap();
    let newer = pending(
        "04l000000000011",
        "500000000000011",
        Some(5_000),
        &[
            ("Status", Some("Closed")),
            ("IsClosed", Some("1")),
            ("ClosedDate", Some("2024-03-14T09:26:53Z")),
            ("Note", Some("")),
        ],
    );
    let older = pending(
        "04l000000000010",
        "500000000000011",
        Some(4_000),
        &[("Status", Some("New"))],
    );
    assert_eq!(
        adapter.apply(std::slice::from_ref(&newer)).await,
        vec![Ok(ApplyOutcome::Applied)]
    );
    let again = adapter.apply(&[older, newer]).await;
    assert!(matches!(&again[0], Ok(ApplyOutcome::Stale(why)) if why.contains("older")));
    assert_eq!(again[1], Ok(ApplyOutcome::Applied));
    let rows = legacy_sql::inspect::query_sqlite(
        &db,
        "SELECT status, is_closed, closed_at, note, missing, (SELECT count(*) FROM log) FROM tickets",
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some("Closed".into()),
            Some("1".into()),
            Some("2024-03-14T09:26:53.000Z".into()),
            None,
            None,
            Some("1".into())
        ]]
    );
}
