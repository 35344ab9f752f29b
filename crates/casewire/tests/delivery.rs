//! The delivery engine through the real binary: endpoint isolation (with the measured latency of the
//! healthy endpoint), payload modes, the delivery-status API and CLI, and graceful shutdown.

mod common;
#[path = "common/endpoint.rs"]
mod endpoint;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use endpoint::{Endpoint, Gate, ack};
use serde_json::{Value, json};

/// A desk whose closed cases go to each of `actions` (name, endpoint URL, extra action lines).
fn desk_with(actions: &[(&str, &str, &str)], delivery: &str) -> String {
    let mut text = format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
# These tests are about delivery; the REST API's tokens are tested in rest_api.rs.
require_auth = false

[delivery]
{delivery}

[[desk.rules]]
name = "Case_Closed"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "IsClosed", operation = "equals", value = "true" }}]
actions = [{}]
"#,
        actions
            .iter()
            .map(|(name, _, _)| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, url, extra) in actions {
        text.push_str(&format!(
            r#"
[[desk.actions]]
name = "{name}"
object = "Case"
endpoint_url = "{url}"
fields = ["Status", "Subject"]
{extra}
"#
        ));
    }
    text
}

fn cases(desk: &str) -> String {
    format!("{desk}/services/data/v60.0/sobjects/Case")
}

fn create(client: &reqwest::blocking::Client, desk: &str, subject: &str) -> String {
    let created: Value = client
        .post(cases(desk))
        .json(&json!({ "Subject": subject }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    created["id"].as_str().expect("id").to_owned()
}

fn patch(client: &reqwest::blocking::Client, desk: &str, id: &str, body: Value) {
    let r = client
        .patch(format!("{}/{id}", cases(desk)))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
}

/// The record ids a message carries.
fn record_ids(seen: &endpoint::Seen) -> Vec<String> {
    seen.message()
        .notifications
        .iter()
        .filter_map(|n| n.field("Id").flatten().map(str::to_owned))
        .collect()
}

#[test]
fn a_dead_endpoint_does_not_delay_a_healthy_one() {
    let dead = Endpoint::start(|_| None);
    let healthy = Endpoint::start(|_| ack());
    let dir = tempfile::tempdir().unwrap();
    let config = desk_with(
        &[
            ("To_Dead", &dead.url("/dead"), ""),
            ("To_Healthy", &healthy.url("/healthy"), ""),
        ],
        r#"attempt_timeout = "2s"
lease = "5s"
retry_base = "200ms"
retry_max = "400ms""#,
    );
    let desk = Server::start(dir.path(), "desk", &config);
    let client = http();
    let ids: Vec<String> = (0..12)
        .map(|i| create(&client, desk.desk_url(), &format!("isolation {i}")))
        .collect();
    let mut closed_at: HashMap<String, Instant> = HashMap::new();
    for id in &ids {
        closed_at.insert(id.clone(), Instant::now());
        patch(&client, desk.desk_url(), id, json!({ "Status": "Closed" }));
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every close reaches the healthy endpoint; when is measured from just before the close request.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut arrived: HashMap<String, Instant> = HashMap::new();
    while arrived.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} reached the healthy endpoint",
            arrived.len(),
            ids.len()
        );
        for seen in healthy.seen() {
            for record in record_ids(&seen) {
                arrived.entry(record).or_insert(seen.at);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut latencies: Vec<Duration> = ids.iter().map(|id| arrived[id] - closed_at[id]).collect();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    println!(
        "isolation: endpoint B (healthy) close -> received over {} notifications while endpoint A never answers: median {} ms, max {} ms",
        latencies.len(),
        median.as_millis(),
        max.as_millis()
    );
    assert!(
        max < Duration::from_secs(1),
        "every notification reached the healthy endpoint within 1 s: {latencies:?}"
    );

    // Meanwhile the dead endpoint held its slot: its first message stayed unanswered until the attempt
    // timeout, and healthy deliveries happened during that time.
    let held = dead.seen();
    assert!(!held.is_empty(), "the dead endpoint was tried");
    let first_held = held[0].at;
    let during = arrived
        .values()
        .filter(|at| **at > first_held && **at < first_held + Duration::from_secs(2))
        .count();
    assert!(
        during >= 5,
        "{during} healthy deliveries happened while the dead endpoint held a message"
    );
    let db = dir.path().join("desk.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE action = 'To_Healthy' AND state = 'delivered'"
        ),
        12
    );
    let dead_rows = query(
        &db,
        "SELECT state, last_error FROM outbox WHERE action = 'To_Dead' AND attempts > 0",
    );
    assert!(!dead_rows.is_empty());
    for row in dead_rows {
        assert_eq!(row[0].as_deref(), Some("pending"));
        assert_eq!(
            row[1].as_deref(),
            Some("timeout: no complete answer within 2s")
        );
    }
}

#[test]
fn latest_sends_the_state_at_send_time_and_snapshot_the_state_at_the_change() {
    // Each endpoint holds its first message until the gate opens: meanwhile the next notifications
    // wait in the queue (one message in flight per endpoint) while their records change.
    let gate = Gate::default();
    let hold_first = |gate: Gate| {
        let first = Arc::new(AtomicBool::new(true));
        move |_: &endpoint::Seen| {
            if first.swap(false, Ordering::SeqCst) {
                gate.wait();
            }
            ack()
        }
    };
    let latest = Endpoint::start(hold_first(gate.clone()));
    let snapshot = Endpoint::start(hold_first(gate.clone()));
    let dir = tempfile::tempdir().unwrap();
    let config = desk_with(
        &[
            (
                "Latest",
                &latest.url("/latest"),
                r#"payload_mode = "latest""#,
            ),
            (
                "Snapshot",
                &snapshot.url("/snapshot"),
                r#"payload_mode = "snapshot""#,
            ),
        ],
        "",
    );
    let desk = Server::start(dir.path(), "desk", &config);
    let (client, url) = (http(), desk.desk_url().to_owned());

    let x = create(&client, &url, "X");
    patch(&client, &url, &x, json!({ "Status": "Closed" }));
    latest.wait_for(1, Duration::from_secs(5));
    snapshot.wait_for(1, Duration::from_secs(5));

    let y = create(&client, &url, "Y before");
    patch(&client, &url, &y, json!({ "Status": "Closed" }));
    patch(&client, &url, &y, json!({ "Subject": "Y after" }));
    let z = create(&client, &url, "Z");
    patch(&client, &url, &z, json!({ "Status": "Closed" }));
    let deleted = client
        .delete(format!("{}/{z}", cases(&url)))
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    gate.open();

    let db = dir.path().join("desk.db");
    let outbox_id = |action: &str, record: &str| -> String {
        query(
            &db,
            &format!("SELECT id FROM outbox WHERE action = '{action}' AND record_id = '{record}'"),
        )[0][0]
            .clone()
            .unwrap()
    };

    let second = latest.wait_for(2, Duration::from_secs(5))[1].message();
    let ids: Vec<&str> = second.notifications.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![outbox_id("Latest", &y), outbox_id("Latest", &z)],
        "Y and Z waited and left together, each with its own notification id"
    );
    let (ny, nz) = (&second.notifications[0], &second.notifications[1]);
    assert_eq!(
        ny.field("Subject"),
        Some(Some("Y after")),
        "latest: as at send time"
    );
    assert_eq!(ny.field("Status"), Some(Some("Closed")));
    assert_eq!(nz.object_type, "Case");
    assert!(
        nz.fields.is_empty(),
        "latest: a record deleted before delivery is sent as an empty sObject: {:?}",
        nz.fields
    );

    let second = snapshot.wait_for(2, Duration::from_secs(5))[1].message();
    let ids: Vec<&str> = second.notifications.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![outbox_id("Snapshot", &y), outbox_id("Snapshot", &z)]
    );
    let (ny, nz) = (&second.notifications[0], &second.notifications[1]);
    assert_eq!(
        ny.field("Subject"),
        Some(Some("Y before")),
        "snapshot: as at the change"
    );
    assert_eq!(nz.field("Id"), Some(Some(z.as_str())));
    assert_eq!(nz.field("Subject"), Some(Some("Z")));
    assert_eq!(nz.field("Status"), Some(Some("Closed")));

    let delivered = wait_for(Duration::from_secs(5), || {
        (count(&db, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == 6).then_some(())
    });
    assert!(delivered.is_some(), "all six notifications delivered");
}

fn closed_port() -> u16 {
    free_port()
}

fn get(client: &reqwest::blocking::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("queue")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", "tester")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn delivery_status_api_and_cli() {
    let (down, dead) = (closed_port(), closed_port());
    let dir = tempfile::tempdir().unwrap();
    let config = desk_with(
        &[
            (
                "Down",
                &format!("http://127.0.0.1:{down}/down"),
                r#"delivery = { retry_base = "1h", retry_max = "2h" }"#,
            ),
            (
                "Dead",
                &format!("http://127.0.0.1:{dead}/dead"),
                r#"delivery = { expiry = "300ms", retry_base = "100ms" }"#,
            ),
        ],
        "",
    );
    let mut desk = Server::start(dir.path(), "desk", &config);
    let (client, url) = (http(), desk.desk_url().to_owned());
    for i in 0..3 {
        create_and_close(&client, &url, &format!("secret subject {i}"));
    }
    let db = dir.path().join("desk.db");
    let settled = wait_for(Duration::from_secs(10), || {
        (count(
            &db,
            "SELECT count(*) FROM outbox WHERE action = 'Down' AND attempts = 1",
        ) == 3
            && count(
                &db,
                "SELECT count(*) FROM outbox WHERE action = 'Dead' AND state = 'failed'",
            ) == 3)
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "one failed attempt each for Down, Dead expired"
    );

    // The queue, filtered by action.
    let (status, body) = get(&client, &format!("{url}/admin/queue?action=Down"));
    assert_eq!(status, 200);
    let rows = body["notifications"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["action"], "Down");
        assert_eq!(row["endpoint"], format!("http://127.0.0.1:{down}/down"));
        assert_eq!(row["state"], "pending");
        assert_eq!(row["attempts"], 1);
        assert!(row["record_id"].as_str().unwrap().starts_with("500"));
        assert!(row["notification_id"].as_str().unwrap().starts_with("04l"));
        assert!(
            row["last_failure"]
                .as_str()
                .unwrap()
                .starts_with("connection refused: "),
            "{row}"
        );
        let next: chrono::DateTime<chrono::Utc> =
            row["next_attempt"].as_str().unwrap().parse().unwrap();
        let wait = next - chrono::Utc::now();
        assert!(
            wait > chrono::Duration::minutes(50),
            "the action's own backoff (1 h ± 10%): {wait}"
        );
        assert!(row["age_seconds"].as_i64().unwrap() < 60);
    }
    let (_, body) = get(&client, &format!("{url}/admin/queue?state=failed"));
    assert_eq!(body["count"], 3);
    assert!(body["notifications"].as_array().unwrap().iter().all(|n| {
        n["action"] == "Dead"
            && n["last_failure"]
                .as_str()
                .unwrap()
                .starts_with("expired: connection refused")
    }));
    let (_, body) = get(&client, &format!("{url}/admin/queue?older_than=1h"));
    assert_eq!(body["count"], 0, "nothing is an hour old");
    let (status, body) = get(&client, &format!("{url}/admin/queue?state=stuck"));
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("stuck"));

    // One notification with its attempt log; no payload in it.
    let id = rows[0]["notification_id"].as_str().unwrap().to_owned();
    let (status, detail) = get(&client, &format!("{url}/admin/queue/{id}"));
    assert_eq!(status, 200);
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["http_status"], Value::Null);
    assert!(log[0]["duration_ms"].as_i64().unwrap() >= 0);
    assert!(log[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(log[0]["notification_ids"], json!([id]));
    assert!(
        !detail.to_string().contains("secret subject"),
        "no payload in the status API: {detail}"
    );

    // Retry = send now (the action's backoff is an hour: only the retry explains a second attempt).
    let r = client
        .post(format!("{url}/admin/queue/{id}/retry"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let retried = wait_for(Duration::from_secs(5), || {
        (count(
            &db,
            &format!("SELECT attempts FROM outbox WHERE id = '{id}'"),
        ) == 2)
            .then_some(())
    });
    assert!(retried.is_some(), "the retry was sent at once");

    // Delete records who; a second delete conflicts; an unknown id is not found.
    let other = rows[1]["notification_id"].as_str().unwrap().to_owned();
    let r = client
        .delete(format!("{url}/admin/queue/{other}"))
        .header("X-Casewire-User", "alice")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap()["by"], "alice");
    let (_, shown) = get(&client, &format!("{url}/admin/queue/{other}"));
    assert_eq!(shown["state"], "deleted");
    assert_eq!(shown["note"], "deleted by alice");
    assert!(shown["finished"].as_str().is_some());
    let again = client
        .delete(format!("{url}/admin/queue/{other}?who=bob"))
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let missing = client
        .delete(format!("{url}/admin/queue/04l000000000000AAA"))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Dead letters, and resending them all for an action.
    let (_, failed) = get(&client, &format!("{url}/admin/queue/failed?action=Dead"));
    assert_eq!(failed["count"], 3);
    let r = client
        .post(format!("{url}/admin/queue/resend"))
        .json(&json!({ "action": "Dead", "since": "1h" }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().unwrap()["resent"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let resent = wait_for(Duration::from_secs(5), || {
        (count(
            &db,
            "SELECT count(*) FROM outbox WHERE action = 'Dead' AND state = 'failed' AND attempts >= 2",
        ) == 3)
            .then_some(())
    });
    assert!(resent.is_some(), "resent, failed again, kept again");

    // The CLI works on the database while the server is down.
    assert!(desk.terminate().success());
    let config_path = dir.path().join("desk.toml");
    let (ok, out, err) = cli(&config_path, &["ls", "--action", "Down"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NOTIFICATION") && lines[0].contains("LAST FAILURE"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "header, two rows, count: {out}");
    assert!(out.contains(&id) && !out.contains(&other), "{out}");
    assert!(
        out.contains("connection refused") && out.contains("2 notification(s)"),
        "{out}"
    );

    let (ok, out, _) = cli(&config_path, &["show", &id]);
    assert!(ok);
    assert!(out.contains("attempt log (2, newest first)"), "{out}");
    assert!(out.contains("failed") && out.contains(&id), "{out}");

    let (ok, out, _) = cli(&config_path, &["retry", &id]);
    assert!(ok && out.starts_with("1 of 1"), "{out}");
    let due = query(
        &db,
        &format!("SELECT next_attempt FROM outbox WHERE id = '{id}'"),
    );
    let due: i64 = due[0][0].as_deref().unwrap().parse().unwrap();
    assert!(due <= chrono::Utc::now().timestamp_millis(), "due now");

    let (ok, out, _) = cli(&config_path, &["delete", &id]);
    assert!(ok && out.contains("deleted by tester"), "{out}");
    let (ok, _, err) = cli(&config_path, &["delete", &id, "--who", "carol"]);
    assert!(!ok && err.contains("not pending or failed"), "{err}");

    let (ok, out, _) = cli(&config_path, &["failed", "--action", "Dead", "--json"]);
    assert!(ok);
    let failed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 3);
    let (ok, out, _) = cli(
        &config_path,
        &["resend", "--action", "Dead", "--since", "1h"],
    );
    assert!(
        ok && out.starts_with("3 notification(s) queued again"),
        "{out}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE action = 'Dead' AND state = 'pending'"
        ),
        3
    );
    let (ok, _, err) = cli(&config_path, &["show", "04l000000000000AAA"]);
    assert!(!ok && err.contains("no notification"), "{err}");
}

#[test]
fn sigterm_finishes_or_releases_in_flight_messages_within_the_grace() {
    let answering = Arc::new(AtomicBool::new(false));
    let stuck = {
        let answering = answering.clone();
        Endpoint::start(move |_| answering.load(Ordering::SeqCst).then(ack).flatten())
    };
    let slow = Endpoint::start(|_| {
        std::thread::sleep(Duration::from_millis(700));
        ack()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = desk_with(
        &[
            ("Stuck", &stuck.url("/stuck"), ""),
            ("Slow", &slow.url("/slow"), ""),
        ],
        r#"attempt_timeout = "20s"
lease = "30s"
shutdown_grace = "1500ms""#,
    );
    let mut desk = Server::start(dir.path(), "desk", &config);
    create_and_close(&http(), desk.desk_url(), "in flight at shutdown");
    stuck.wait_for(1, Duration::from_secs(5));
    slow.wait_for(1, Duration::from_secs(5));

    let started = Instant::now();
    let status = desk.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "waited the grace for the stuck message, then exited: {took:?}"
    );
    let db = dir.path().join("desk.db");
    let rows = query(
        &db,
        "SELECT action, state, attempts, lease_until FROM outbox ORDER BY action",
    );
    assert_eq!(
        rows,
        vec![
            vec![
                Some("Slow".into()),
                Some("delivered".into()),
                Some("1".into()),
                None
            ],
            vec![
                Some("Stuck".into()),
                Some("pending".into()),
                Some("0".into()),
                None
            ],
        ],
        "the answer that came within the grace was recorded; the other claim was released"
    );

    // Released, not leased: a restart sends it at once, not after the 30 s lease.
    answering.store(true, Ordering::SeqCst);
    let _desk = Server::start(dir.path(), "desk", &config);
    let delivered = wait_for(Duration::from_secs(5), || {
        (count(&db, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == 2).then_some(())
    });
    assert!(
        delivered.is_some(),
        "the released notification was sent right after the restart"
    );
}
