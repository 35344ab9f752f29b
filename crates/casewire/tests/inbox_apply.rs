//! Applying through each adapter with the real binary, real HTTP and real databases: a SQLite file, the
//! PostgreSQL server on 127.0.0.1:5432, a shell script, a local HTTP server. An older notification that
//! arrives after a newer one never overwrites it; a deleted record applies nothing; what cannot apply
//! is quarantined with its reason and replayed from the command line.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const RECORD: &str = "5005g00000AbCdEAAV";
const T1: &str = "2026-03-01T10:00:00.000Z";
const T2: &str = "2026-03-01T10:05:00.000Z";

fn post_ok(url: &str, body: &str) {
    let (status, _, answer) = post_with(&http(), url, body, &[]);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("<Ack>true</Ack>"));
}

/// Waits until the notification is finished (not `received`) and answers (state, reason).
fn finished(dir: &Path, id: &str) -> (String, Option<String>) {
    let db = dir.join("inbox.db");
    wait_for(Duration::from_secs(15), || {
        let rows = query(
            &db,
            &format!(
                "SELECT state, last_error FROM inbox WHERE id = '{id}' AND state != 'received'"
            ),
        );
        rows.into_iter()
            .next()
            .map(|r| (r[0].clone().unwrap(), r[1].clone()))
    })
    .unwrap_or_else(|| panic!("{id} was not applied in time"))
}

const FAST_APPLIER: &str = r#"
[applier]
retry_base = "100ms"
retry_max = "200ms"
idle_poll = "100ms"
max_attempts = 3
"#;

#[test]
fn sqlite_target_keeps_the_newer_version_and_applies_nothing_for_a_deleted_record() {
    let empty = std::fs::read_to_string(conformance("requests/edge-empty-sobject.xml")).unwrap();
    let empty_org = empty.split("<OrganizationId>").nth(1).unwrap()[..15].to_owned();
    let dir = tempfile::tempdir().unwrap();
    let config = inbox_config("127.0.0.1:0", &[ORG, &empty_org]);
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/legacy", inbox.inbox_url());

    post_ok(
        &url,
        &case_message(&[("04l5g00000Ord02AAA", RECORD, Some(T2), "Closed")]),
    );
    assert_eq!(finished(dir.path(), "04l5g00000Ord02AAA").0, "applied");
    post_ok(
        &url,
        &case_message(&[("04l5g00000Ord01AAA", RECORD, Some(T1), "New")]),
    );
    let (state, reason) = finished(dir.path(), "04l5g00000Ord01AAA");
    assert_eq!(state, "stale");
    assert_eq!(
        reason.as_deref(),
        Some(
            "version 2026-03-01T10:00:00.000Z is older than the applied version 2026-03-01T10:05:00.000Z"
        )
    );
    let legacy = dir.path().join("legacy.db");
    assert_eq!(
        query(&legacy, "SELECT status, subject FROM tickets"),
        vec![vec![Some("Closed".into()), None]],
        "the older one did not overwrite; Subject was not sent, so it is NULL"
    );
    assert_eq!(count(&legacy, "SELECT count(*) FROM applied_log"), 1);

    post_ok(&url, &empty);
    let id = query(
        &dir.path().join("inbox.db"),
        "SELECT id FROM inbox WHERE fields = '[]'",
    )[0][0]
        .clone()
        .unwrap();
    assert_eq!(finished(dir.path(), &id).0, "empty");
    assert_eq!(
        count(&legacy, "SELECT count(*) FROM applied_log"),
        1,
        "nothing applied"
    );
}

fn pg_rows(sql: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            "postgres://postgres@127.0.0.1:5432/test",
            tokio_postgres::NoTls,
        )
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test starts it)");
        tokio::spawn(connection);
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

#[test]
fn postgres_target_applies_once_in_version_order() {
    let schema = format!("cw_inbox_{}", std::process::id());
    pg_rows(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"
{FAST_APPLIER}
[[inbox.routes]]
name = "pg"
allowed_organization_ids = ["{ORG}"]
version_fields = ["SystemModstamp"]

[inbox.routes.adapter]
kind = "sql"
target = "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
setup = ["CREATE TABLE IF NOT EXISTS tickets (case_id text PRIMARY KEY, status text, modified timestamptz, applied integer NOT NULL DEFAULT 1)"]
statements = ["INSERT INTO tickets (case_id, status, modified) VALUES (:Id, :Status, :SystemModstamp) ON CONFLICT (case_id) DO UPDATE SET status = excluded.status, modified = excluded.modified, applied = tickets.applied + 1"]

[inbox.routes.adapter.convert]
SystemModstamp = "timestamp"
"#
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/pg", inbox.inbox_url());
    post_ok(
        &url,
        &case_message(&[("04l5g00000Pg002AAA", RECORD, Some(T2), "Closed")]),
    );
    assert_eq!(finished(dir.path(), "04l5g00000Pg002AAA").0, "applied");
    post_ok(
        &url,
        &case_message(&[("04l5g00000Pg001AAA", RECORD, Some(T1), "New")]),
    );
    post_ok(
        &url,
        &case_message(&[("04l5g00000Pg002AAA", RECORD, Some(T2), "Closed")]),
    );
    assert_eq!(finished(dir.path(), "04l5g00000Pg001AAA").0, "stale");
    assert_eq!(
        pg_rows(&format!(
            "SELECT status, to_char(modified AT TIME ZONE 'UTC', 'HH24:MI'), applied FROM {schema}.tickets"
        )),
        vec![vec![
            Some("Closed".into()),
            Some("10:05".into()),
            Some("1".into())
        ]]
    );
    assert_eq!(
        pg_rows(&format!(
            "SELECT notification_id FROM {schema}.casewire_ledger ORDER BY notification_id"
        )),
        vec![
            vec![Some("04l5g00000Pg001AAA".into())],
            vec![Some("04l5g00000Pg002AAA".into())]
        ],
        "the stale one is in the ledger too, so a replay stays a no-op"
    );
    pg_rows(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}

const SCRIPT: &str = r#"#!/bin/sh
# Appends "<notification id> <status>" to applied.txt. Refuses status "bad" for good (65) while the
# file "refuse" exists; status "stuck" asks for a retry (75).
cat > /dev/null
if [ "$SF_Status" = bad ] && [ -e refuse ]; then echo "bad is not a status we know" >&2; exit 65; fi
if [ "$SF_Status" = stuck ]; then echo "legacy system busy" >&2; exit 75; fi
echo "$CASEWIRE_NOTIFICATION_ID $SF_Status" >> applied.txt
"#;

#[test]
fn command_adapter_with_out_of_order_quarantine_and_replay_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("apply.sh"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("refuse"), "").unwrap();
    let config = format!(
        r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"
{FAST_APPLIER}
[[inbox.routes]]
name = "cmd"
object = "Case"

[inbox.routes.adapter]
kind = "command"
program = "/bin/sh"
args = ["apply.sh"]
working_dir = "."
timeout = "10s"
"#
    );
    let config = config.replace("max_attempts = 3", "max_attempts = 50");
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/cmd", inbox.inbox_url());
    let applied = || std::fs::read_to_string(dir.path().join("applied.txt")).unwrap_or_default();

    // Newer first, then older: the script never sees the older one.
    post_ok(
        &url,
        &case_message(&[("04l5g00000Cmd02AAA", RECORD, Some(T2), "Closed")]),
    );
    assert_eq!(finished(dir.path(), "04l5g00000Cmd02AAA").0, "applied");
    post_ok(
        &url,
        &case_message(&[("04l5g00000Cmd01AAA", RECORD, Some(T1), "New")]),
    );
    let (state, reason) = finished(dir.path(), "04l5g00000Cmd01AAA");
    assert_eq!(state, "stale");
    assert!(reason.unwrap().contains("older than the applied version"));
    assert_eq!(applied(), "04l5g00000Cmd02AAA Closed\n");

    // Permanent failure: quarantined with the script's reason.
    post_ok(
        &url,
        &case_message(&[("04l5g00000Cmd03AAA", "5005g00000ZzZzZAAA", None, "bad")]),
    );
    let (state, reason) = finished(dir.path(), "04l5g00000Cmd03AAA");
    assert_eq!(state, "quarantined");
    assert!(
        reason
            .as_deref()
            .unwrap()
            .contains("exited with 65 (permanent): bad is not a status we know"),
        "{reason:?}"
    );
    let config_path = dir.path().join("inbox.toml");
    let cfg = config_path.to_str().unwrap();
    let (code, out, _) = run_cli(&["inbox", "ls", "--config", cfg, "--state", "quarantined"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "header and one row: {out}");
    assert!(
        lines[1].starts_with("04l5g00000Cmd03AAA") && lines[1].contains("quarantined"),
        "{out}"
    );
    assert!(lines[1].contains("exited with 65"), "{out}");
    let (code, out, _) = run_cli(&["inbox", "show", "04l5g00000Cmd03AAA", "--config", cfg]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "quarantined");
    assert_eq!(shown["fields"]["Status"], "bad");
    assert_eq!(shown["attempts"], 1);
    let (code, _, err) = run_cli(&["inbox", "show", "04l5g00000NoSuchAA", "--config", cfg]);
    assert_eq!(code, 2);
    assert!(err.contains("no notification 04l5g00000NoSuchAA"));

    // The operator fixes the cause and replays: applied, once.
    std::fs::remove_file(dir.path().join("refuse")).unwrap();
    let (code, out, _) = run_cli(&["inbox", "replay", "04l5g00000Cmd03AAA", "--config", cfg]);
    assert_eq!(
        (code, out.trim()),
        (0, "1 of 1 notification(s) will be applied again")
    );
    assert!(
        wait_for(Duration::from_secs(10), || applied()
            .contains("04l5g00000Cmd03AAA bad")
            .then_some(()))
        .is_some(),
        "replayed: {}",
        applied()
    );
    assert_eq!(finished(dir.path(), "04l5g00000Cmd03AAA").0, "applied");

    // One that keeps asking for a retry can be parked by the operator.
    post_ok(
        &url,
        &case_message(&[("04l5g00000Cmd04AAA", "5005g00000YyYyYAAA", None, "stuck")]),
    );
    let attempted = wait_for(Duration::from_secs(10), || {
        let rows = query(
            &dir.path().join("inbox.db"),
            "SELECT attempts, last_error FROM inbox WHERE id = '04l5g00000Cmd04AAA'",
        );
        (rows[0][0].as_deref() != Some("0")).then(|| rows[0][1].clone())
    })
    .unwrap();
    assert!(
        attempted
            .unwrap()
            .contains("exited with 75: legacy system busy")
    );
    let (code, out, _) = run_cli(&[
        "inbox",
        "quarantine",
        "04l5g00000Cmd04AAA",
        "--reason",
        "parked by test",
        "--config",
        cfg,
    ]);
    assert_eq!(code, 0, "{out}");
    let (state, reason) = finished(dir.path(), "04l5g00000Cmd04AAA");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("quarantined", Some("parked by test"))
    );
    assert_eq!(applied().lines().count(), 2, "{}", applied());
}

/// A legacy REST endpoint on loopback: records (Idempotency-Key, body) and answers 422 for status
/// "invalid", 201 otherwise.
/// What the legacy endpoint received: (Idempotency-Key, JSON body).
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

fn legacy_rest() -> (String, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen_in.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut key) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if lower.starts_with("idempotency-key:") {
                            key = h["idempotency-key:".len()..].trim().to_owned();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let invalid = json["fields"]["Status"] == "invalid";
                    seen.lock().unwrap().push((key, json));
                    let answer: &[u8] = if invalid {
                        b"HTTP/1.1 422 Unprocessable\r\nContent-Length: 14\r\n\r\nunknown status"
                    } else {
                        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
                    };
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/tickets"), seen)
}

#[test]
fn http_adapter_posts_json_with_the_idempotency_key() {
    let (endpoint, seen) = legacy_rest();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"
{FAST_APPLIER}
[[inbox.routes]]
name = "rest"

[inbox.routes.adapter]
kind = "http"
url = "{endpoint}"
timeout = "5s"
"#
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/rest", inbox.inbox_url());
    post_ok(
        &url,
        &case_message(&[
            ("04l5g00000Http1AAA", RECORD, Some(T1), "New"),
            ("04l5g00000Http2AAA", RECORD, Some(T2), "Closed"),
            ("04l5g00000Http3AAA", "5005g00000ZzZzZAAA", None, "invalid"),
        ]),
    );
    assert_eq!(finished(dir.path(), "04l5g00000Http1AAA").0, "applied");
    assert_eq!(finished(dir.path(), "04l5g00000Http2AAA").0, "applied");
    let (state, reason) = finished(dir.path(), "04l5g00000Http3AAA");
    assert_eq!(state, "quarantined");
    assert!(reason.unwrap().contains("422"));
    let seen = seen.lock().unwrap();
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "04l5g00000Http1AAA",
            "04l5g00000Http2AAA",
            "04l5g00000Http3AAA"
        ],
        "in version order, one POST each (a 422 is not retried)"
    );
    assert_eq!(seen[1].1["fields"]["Status"], "Closed");
    assert_eq!(seen[1].1["version"], T2);
    assert_eq!(seen[1].1["organization_id"], ORG);
    assert_eq!(seen[1].1["route"], "rest");
}
