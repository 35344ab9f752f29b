//! The main job with both roles on the real PostgreSQL at 127.0.0.1:5432 (database `test`), each test
//! in a schema of its own.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn psql(sql: &str) {
    let status = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .status()
        .expect("psql");
    assert!(status.success(), "psql {sql}");
}

fn psql_count(sql: &str) -> i64 {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-tA",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1)
}

#[test]
fn closed_cases_reach_the_legacy_database_with_both_roles_on_postgres() {
    let schema = format!("cw_it_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let url =
        format!("postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let inbox_port = free_port();
    let config = format!(
        "{}\n{}",
        desk_config(&format!("http://127.0.0.1:{inbox_port}/inbox/legacy"), ""),
        inbox_config(&format!("127.0.0.1:{inbox_port}"), &[ORG])
    )
    .replace("database = \"desk.db\"", &format!("database = \"{url}\""))
    .replace("database = \"inbox.db\"", &format!("database = \"{url}\""));
    let server = Server::start(dir.path(), "both", &config);
    let client = http();
    for i in 0..20 {
        create_and_close(&client, server.desk_url(), &format!("pg {i}"));
    }
    let legacy = dir.path().join("legacy.db");
    let applied = wait_for(Duration::from_secs(20), || {
        (count(&legacy, "SELECT count(*) FROM tickets WHERE is_closed = 1") == 20).then_some(())
    });
    assert!(applied.is_some(), "20 closed cases applied");
    let delivered = wait_for(Duration::from_secs(5), || {
        (psql_count(&format!(
            "SELECT count(*) FROM {schema}.outbox WHERE state = 'delivered'"
        )) == 20)
            .then_some(())
    });
    assert!(
        delivered.is_some(),
        "the desk's PostgreSQL outbox shows 20 delivered"
    );
    assert_eq!(
        psql_count(&format!("SELECT count(*) FROM {schema}.inbox")),
        20
    );
    assert_eq!(
        psql_count(&format!("SELECT count(*) FROM {schema}.records")),
        20
    );
    drop(server);
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
