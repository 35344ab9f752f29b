//! kill -9 of the desk while a thousand notifications are on their way to a slow inbox: after a
//! restart every one is delivered and applied exactly once in the legacy database.

mod common;
#[path = "common/endpoint.rs"]
mod endpoint;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use endpoint::{Endpoint, Gate};
use serde_json::json;

const CASES: usize = 1000;

#[test]
fn kill_9_while_a_thousand_are_in_flight_loses_nothing_and_applies_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Server::start(dir.path(), "inbox", &inbox_config("127.0.0.1:0", &[ORG]));
    let inbox_url = format!("{}/inbox/legacy", inbox.inbox_url());

    // A slow inbox: the proxy hands each message to the real inbox at once (so it is stored and will
    // be applied), then holds the Ack for a while, the window in which the desk dies. The first Ack
    // also waits until every case is created, so that the thousand are queued behind it.
    let answering = Arc::new(AtomicUsize::new(0));
    let created = Gate::default();
    let proxy = {
        let (answering, created) = (answering.clone(), created.clone());
        let client = http();
        Endpoint::start(move |seen| {
            let answer = client
                .post(&inbox_url)
                .header("Content-Type", "text/xml; charset=UTF-8")
                .header("SOAPAction", "\"\"")
                .body(seen.body.clone())
                .send()
                .ok()?;
            let status = answer.status().as_u16();
            let body = answer.text().ok()?;
            answering.fetch_add(1, Ordering::SeqCst);
            created.wait();
            std::thread::sleep(Duration::from_millis(300));
            answering.fetch_sub(1, Ordering::SeqCst);
            Some((status, body))
        })
    };
    let config = desk_config(
        &proxy.url("/inbox/legacy"),
        r#"attempt_timeout = "2s"
lease = "3s""#,
    );
    let mut desk = Server::start(dir.path(), "desk", &config);

    // A thousand cases created closed (the rule fires on create), from four clients at once.
    let url = desk.desk_url().to_owned();
    let creators: Vec<_> = (0..4)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = http();
                for i in 0..CASES / 4 {
                    let r = client
                        .post(format!("{url}/services/data/v60.0/sobjects/Case"))
                        .json(&json!({ "Subject": format!("crash {t}-{i}"), "Status": "Closed" }))
                        .send()
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                }
            })
        })
        .collect();
    for c in creators {
        c.join().unwrap();
    }
    let desk_db = dir.path().join("desk.db");
    assert_eq!(count(&desk_db, "SELECT count(*) FROM outbox"), CASES as i64);
    created.open();

    // Kill -9 while the third message is stored at the inbox but its Ack has not reached the desk.
    let in_flight = wait_for(Duration::from_secs(10), || {
        (proxy.seen().len() >= 3 && answering.load(Ordering::SeqCst) > 0).then_some(())
    });
    assert!(in_flight.is_some(), "a message was in flight");
    desk.kill();
    let delivered_before = count(
        &desk_db,
        "SELECT count(*) FROM outbox WHERE state = 'delivered'",
    );
    println!(
        "crash: killed with {} of {CASES} notifications not yet recorded as delivered",
        CASES as i64 - delivered_before
    );
    assert!(
        delivered_before < CASES as i64 / 2,
        "most notifications were still on their way at the kill: {delivered_before} delivered"
    );

    let restarted = Instant::now();
    let _desk = Server::start(dir.path(), "desk", &config);
    let legacy = dir.path().join("legacy.db");
    let done = wait_for(Duration::from_secs(40), || {
        (count(
            &desk_db,
            "SELECT count(*) FROM outbox WHERE state = 'delivered'",
        ) == CASES as i64
            && count(&legacy, "SELECT count(*) FROM casewire_ledger") == CASES as i64)
            .then_some(())
    });
    assert!(
        done.is_some(),
        "after the restart: {} delivered, {} applied",
        count(
            &desk_db,
            "SELECT count(*) FROM outbox WHERE state = 'delivered'"
        ),
        count(&legacy, "SELECT count(*) FROM casewire_ledger")
    );
    println!(
        "crash: all {CASES} delivered and applied {} ms after the restart",
        restarted.elapsed().as_millis()
    );

    // Some notifications reached the inbox twice (the ones in flight at the kill)...
    let sent: usize = proxy
        .seen()
        .iter()
        .map(|s| s.notification_ids().len())
        .sum();
    assert!(
        sent > CASES,
        "the message in flight at the kill was sent again after the lease: {sent} sent"
    );
    // ...yet each was stored once, applied once, and appears once in the append-only log.
    std::thread::sleep(Duration::from_millis(300));
    let inbox_db = dir.path().join("inbox.db");
    assert_eq!(count(&inbox_db, "SELECT count(*) FROM inbox"), CASES as i64);
    assert_eq!(
        count(&legacy, "SELECT count(*) FROM applied_log"),
        CASES as i64,
        "one row per notification in the append-only log"
    );
    assert_eq!(
        count(
            &legacy,
            "SELECT count(DISTINCT notification_id) FROM applied_log"
        ),
        CASES as i64
    );
    assert_eq!(
        count(
            &legacy,
            "SELECT count(*) FROM tickets WHERE status = 'Closed'"
        ),
        CASES as i64
    );
    let outbox_ids = query(&desk_db, "SELECT id FROM outbox ORDER BY id");
    let logged_ids = query(
        &legacy,
        "SELECT notification_id FROM applied_log ORDER BY notification_id",
    );
    assert_eq!(outbox_ids, logged_ids, "exactly the queued notifications");
}
