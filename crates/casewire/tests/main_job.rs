//! The main job end to end, with the real binary, real HTTP over loopback and real SQLite files:
//! cases closed through the desk's REST API reach the legacy database exactly once, through outages
//! and duplicate deliveries.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn demo_applies_fifty_closed_cases_to_the_legacy_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--cases", "50", "--timeout", "60s", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("applied in the legacy database: 50/50"),
        "{stdout}"
    );
    assert!(stdout.contains("close -> applied: median"), "{stdout}");

    let legacy = dir.path().join("legacy.db");
    let rows = query(
        &legacy,
        "SELECT case_number, status, is_closed, closed_at, updated_at FROM tickets ORDER BY case_number",
    );
    assert_eq!(rows.len(), 50);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0].as_deref(), Some(format!("{:08}", i + 1).as_str()));
        assert_eq!(row[1].as_deref(), Some("Closed"));
        assert_eq!(row[2].as_deref(), Some("1"));
        let closed_at = row[3].as_deref().expect("closed_at filled in");
        assert!(
            closed_at.ends_with('Z') && closed_at.len() == 24,
            "{closed_at}"
        );
        // ClosedDate is set by the same save that stamps SystemModstamp.
        assert_eq!(row[3], row[4]);
    }
    assert_eq!(
        count(&legacy, "SELECT count(*) FROM casewire_ledger"),
        50,
        "one ledger entry per notification"
    );
    let config = std::fs::read_to_string(dir.path().join("casewire.toml")).unwrap();
    assert!(
        config.contains("onCreateOrTriggeringUpdate"),
        "the demo writes its rules out"
    );
}

#[test]
fn demo_fails_clearly_when_cases_cannot_be_applied_in_time() {
    let dir = tempfile::tempdir().unwrap();
    // A configuration whose action points at a port where nothing listens.
    let port = free_port();
    let inbox_port = free_port();
    let text = format!(
        "{}\n{}",
        desk_config(&format!("http://127.0.0.1:{port}/inbox/legacy"), ""),
        inbox_config(&format!("127.0.0.1:{inbox_port}"), &[])
    );
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--cases", "3", "--timeout", "2s", "--dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("only 0 of 3 closed cases reached the legacy database"),
        "{stderr}"
    );
}

#[test]
fn inbox_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inbox_port = free_port();
    let endpoint = format!("http://127.0.0.1:{inbox_port}/inbox/legacy");
    let desk = Server::start(dir.path(), "desk", &desk_config(&endpoint, ""));
    let client = http();
    let ids: Vec<String> = (0..10)
        .map(|i| create_and_close(&client, desk.desk_url(), &format!("outage {i}")))
        .collect();

    // While the inbox is down, every notification stays queued with a specific failure reason.
    let desk_db = dir.path().join("desk.db");
    let failing = wait_for(Duration::from_secs(10), || {
        let rows = query(&desk_db, "SELECT attempts, last_error, state FROM outbox");
        (rows.len() == 10 && rows.iter().all(|r| r[0].as_deref() != Some("0"))).then_some(rows)
    })
    .expect("attempts were made while the inbox was down");
    for row in &failing {
        assert_eq!(row[2].as_deref(), Some("pending"));
        assert!(
            row[1]
                .as_deref()
                .unwrap_or("")
                .contains("connection refused"),
            "{row:?}"
        );
    }

    let inbox = Server::start(
        dir.path(),
        "inbox",
        &inbox_config(&format!("127.0.0.1:{inbox_port}"), &[ORG]),
    );
    let legacy = dir.path().join("legacy.db");
    let applied = wait_for(Duration::from_secs(20), || {
        (count(
            &legacy,
            "SELECT count(*) FROM tickets WHERE status = 'Closed' AND is_closed = 1",
        ) == 10)
            .then_some(())
    });
    assert!(
        applied.is_some(),
        "all 10 closed cases applied after the inbox came up"
    );
    let mut applied_ids: Vec<String> =
        query(&legacy, "SELECT case_id FROM tickets ORDER BY case_id")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
    let mut expected = ids.clone();
    expected.sort();
    applied_ids.sort();
    assert_eq!(applied_ids, expected);
    assert_eq!(
        count(&legacy, "SELECT count(*) FROM applied_log"),
        10,
        "each applied exactly once"
    );
    let delivered = wait_for(Duration::from_secs(5), || {
        (count(
            &desk_db,
            "SELECT count(*) FROM outbox WHERE state = 'delivered'",
        ) == 10)
            .then_some(())
    });
    assert!(delivered.is_some(), "the desk counts all 10 as delivered");
    drop(inbox);
}

fn post(client: &reqwest::blocking::Client, url: &str, body: &[u8]) -> (u16, String, String) {
    let response = client
        .post(url)
        .header("Content-Type", "text/xml; charset=UTF-8")
        .header("SOAPAction", "\"\"")
        .body(body.to_vec())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().unwrap())
}

#[test]
fn duplicate_deliveries_apply_once_and_are_all_acked() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Server::start(dir.path(), "inbox", &inbox_config("127.0.0.1:0", &[ORG]));
    let url = format!("{}/inbox/legacy", inbox.inbox_url());
    let body = std::fs::read(conformance("golden/case-closed.xml")).unwrap();
    let client = http();

    for _ in 0..2 {
        let (status, content_type, text) = post(&client, &url, &body);
        assert_eq!(status, 200, "{text}");
        assert_eq!(content_type, "text/xml; charset=utf-8");
        assert!(text.contains("<Ack>true</Ack>"), "{text}");
    }
    // Two copies at once (a retry while the first attempt is still running).
    let other = String::from_utf8(body.clone())
        .unwrap()
        .replace("04l5g00000XyZ12AAF", "04l5g00000XyZ13AAF");
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, other) = (client.clone(), url.clone(), other.clone());
            std::thread::spawn(move || post(&client, &url, other.as_bytes()))
        })
        .collect();
    for h in handles {
        let (status, _, text) = h.join().unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("<Ack>true</Ack>"));
    }

    let legacy = dir.path().join("legacy.db");
    let done = wait_for(Duration::from_secs(10), || {
        (count(&legacy, "SELECT count(*) FROM casewire_ledger") == 2).then_some(())
    });
    assert!(done.is_some());
    std::thread::sleep(Duration::from_millis(300));
    let log = query(
        &legacy,
        "SELECT notification_id, record_id FROM applied_log ORDER BY notification_id",
    );
    assert_eq!(
        log,
        vec![
            vec![
                Some("04l5g00000XyZ12AAF".into()),
                Some("5005g00000AbCdEAAV".into())
            ],
            vec![
                Some("04l5g00000XyZ13AAF".into()),
                Some("5005g00000AbCdEAAV".into())
            ],
        ]
    );
    let inbox_db = dir.path().join("inbox.db");
    assert_eq!(count(&inbox_db, "SELECT count(*) FROM inbox"), 2);
}
