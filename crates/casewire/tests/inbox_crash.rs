//! kill -9 of the inbox under load loses no acknowledged notification. Four senders post as fast as
//! the inbox acks; the process is killed with SIGKILL mid-stream; every notification that got an Ack
//! must be in the inbox database, and after a restart every stored notification is applied to the
//! legacy database exactly once.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const SENDERS: u64 = 4;

#[test]
fn kill_9_under_load_loses_no_acknowledged_notification() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = inbox_config(&format!("127.0.0.1:{port}"), &[ORG]);
    let mut inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/legacy", inbox.inbox_url());

    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sent_messages = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (acked, stop, sent, url) = (
            acked.clone(),
            stop.clone(),
            sent_messages.clone(),
            url.clone(),
        );
        senders.push(std::thread::spawn(move || {
            let client = http();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                // 1 to 3 notifications per message, records shared between senders.
                let batch: Vec<(String, String)> = (0..1 + seq % 3)
                    .map(|k| {
                        let n = seq * 3 + k;
                        (
                            format!("04l5g{sender}{n:09}AAA"),
                            format!("5005g{:010}AAA", n % 40),
                        )
                    })
                    .collect();
                seq += 1;
                let parts: Vec<(&str, &str, Option<&str>, &str)> = batch
                    .iter()
                    .map(|(id, record)| (id.as_str(), record.as_str(), None, "Closed"))
                    .collect();
                sent.fetch_add(1, Ordering::Relaxed);
                let response = client.post(&url).body(case_message(&parts)).send();
                match response {
                    Ok(r) if r.status().as_u16() == 200 => {
                        if r.text().is_ok_and(|t| t.contains("<Ack>true</Ack>")) {
                            acked
                                .lock()
                                .unwrap()
                                .extend(batch.into_iter().map(|(id, _)| id));
                        }
                    }
                    // The process is gone: connection refused or reset. Stop sending.
                    _ => break,
                }
            }
        }));
    }
    // Let load build up (and the applier get going), then SIGKILL in the middle of it.
    assert!(
        wait_for(Duration::from_secs(10), || (acked.lock().unwrap().len()
            >= 300)
            .then_some(()))
        .is_some(),
        "the inbox acked under load"
    );
    std::thread::sleep(Duration::from_millis(200));
    inbox.kill();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let inbox_db = dir.path().join("inbox.db");
    let legacy = dir.path().join("legacy.db");
    let stored: BTreeSet<String> = query(&inbox_db, "SELECT id FROM inbox")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    let applied_before_restart = count(&legacy, "SELECT count(*) FROM applied_log");
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acked but not stored: {missing:?}");

    // Restart on the same files: everything stored gets applied, each exactly once.
    let inbox = Server::start(dir.path(), "inbox-restarted", &config);
    let done = wait_for(Duration::from_secs(30), || {
        (count(
            &inbox_db,
            "SELECT count(*) FROM inbox WHERE state = 'received'",
        ) == 0
            && count(&legacy, "SELECT count(*) FROM applied_log") as usize >= stored.len())
        .then_some(())
    });
    assert!(
        done.is_some(),
        "everything stored was applied after the restart"
    );
    drop(inbox);
    let per_id: HashMap<String, i64> = query(
        &legacy,
        "SELECT notification_id, count(*) FROM applied_log GROUP BY notification_id",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].as_deref().unwrap().parse().unwrap(),
        )
    })
    .collect();
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let applied: BTreeSet<String> = per_id.keys().cloned().collect();
    assert_eq!(applied, stored, "applied = stored");
    assert!(acked.is_subset(&applied));
    let states = query(
        &inbox_db,
        "SELECT state, count(*) FROM inbox GROUP BY state",
    );
    assert_eq!(
        states,
        vec![vec![Some("applied".into()), Some(stored.len().to_string())]]
    );
    eprintln!(
        "kill -9 under load: {} messages sent, {} notifications acked, {} stored (acked + committed \
         without an ack reaching the sender), {} applied before the kill, {} applied after the \
         restart, 0 lost, 0 applied twice",
        sent_messages.load(Ordering::Relaxed),
        acked.len(),
        stored.len(),
        applied_before_restart,
        applied.len()
    );
}
