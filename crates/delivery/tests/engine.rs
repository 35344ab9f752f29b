//! The engine against loopback endpoints: connection reuse, specific failure reasons, batching,
//! per-action settings. Real HTTP, a real SQLite store, short intervals from configuration.

mod support;

use std::time::{Duration, Instant};

use delivery::{ActionOverrides, EngineConfig, Transport};
use model::PayloadMode;
use soap::Verdict;
use store::{DeskStore, NotificationState};
use support::*;

const FAULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>legacy database is locked</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
const NACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>false</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_messages_to_one_endpoint_reuse_one_connection() {
    let ep = endpoint(None, |_| Reply::ack()).await;
    let a = action("A", &ep.http_url("/inbox/a"), PayloadMode::Latest);
    let h = Harness::start(catalog(vec![a.clone()]), fast_config());
    for i in 0..5 {
        let ids = h.queue(&[&a], &format!("case {i}")).await;
        let n = h.wait_attempts(&ids[0], 1, Duration::from_secs(5)).await;
        assert_eq!(n.state, NotificationState::Delivered);
    }
    let seen = ep.seen();
    assert_eq!(seen.len(), 5, "one message per notification");
    assert_eq!(
        ep.connections(),
        1,
        "five messages in a row share one keep-alive connection"
    );
    let first = &seen[0];
    assert_eq!(first.path, "/inbox/a");
    assert_eq!(
        first.header("content-type"),
        Some("text/xml; charset=UTF-8")
    );
    assert_eq!(first.header("soapaction"), Some("\"\""));
    assert!(
        first
            .header("user-agent")
            .is_some_and(|u| u.starts_with("casewire/")),
        "{:?}",
        first.headers
    );
    h.stop().await;
}

fn transport_for(actions: Vec<model::OutboundAction>, config: &EngineConfig) -> Transport {
    Transport::new(config, &catalog(actions)).unwrap()
}

async fn reason(transport: &Transport, url: &str, timeout: Duration) -> (Option<u16>, String) {
    let answer = transport.attempt("A", url, b"<x/>".to_vec(), timeout).await;
    match answer.verdict {
        Verdict::Delivered => panic!("{url}: delivered"),
        Verdict::Failed(reason) => {
            eprintln!("{url}: {reason}");
            (answer.http_status, reason)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_failure_has_a_specific_reason() {
    let ep = endpoint(None, |seen| match seen.path.as_str() {
        "/unavailable" => Reply::status(503, ""),
        "/fault" => Reply::status(500, FAULT),
        "/nack" => Reply::status(200, NACK),
        "/html" => Reply::status(200, "<html><body>It works!</body></html>"),
        "/truncated" => Reply::status(200, &support::ACK[..120]),
        "/redirect" => {
            Reply::status(302, "").header("Location", "https://elsewhere.example.com/inbox")
        }
        "/hold" => Reply::Hold,
        _ => Reply::ack(),
    })
    .await;
    let t = transport_for(
        vec![action("A", &ep.http_url("/"), PayloadMode::Latest)],
        &fast_config(),
    );
    let second = Duration::from_secs(5);

    let (status, r) = reason(&t, &ep.http_url("/unavailable"), second).await;
    assert_eq!(
        (status, r.as_str()),
        (Some(503), "HTTP 503 Service Unavailable")
    );

    let (status, r) = reason(&t, &ep.http_url("/fault"), second).await;
    assert_eq!(status, Some(500));
    assert_eq!(
        r,
        "HTTP 500: SOAP fault soapenv:Server: legacy database is locked"
    );

    let (_, r) = reason(&t, &ep.http_url("/nack"), second).await;
    assert_eq!(r, "nack: the endpoint answered Ack false");

    let (_, r) = reason(&t, &ep.http_url("/html"), second).await;
    assert!(
        r.contains("not a SOAP envelope") && r.contains("html"),
        "{r}"
    );

    let (_, r) = reason(&t, &ep.http_url("/truncated"), second).await;
    assert!(r.starts_with("answer is not XML"), "{r}");

    let (status, r) = reason(&t, &ep.http_url("/redirect"), second).await;
    assert_eq!(status, Some(302));
    assert_eq!(
        r,
        "HTTP 302 Found: redirect to https://elsewhere.example.com/inbox not followed"
    );

    let started = Instant::now();
    let (status, r) = reason(&t, &ep.http_url("/hold"), Duration::from_millis(300)).await;
    assert_eq!(status, None);
    assert_eq!(r, "timeout: no complete answer within 300ms");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Nothing listens on a port that was just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_, r) = reason(&t, &format!("http://127.0.0.1:{closed}/x"), second).await;
    assert!(r.starts_with("connection refused: "), "{r}");

    // The .invalid top-level domain never resolves (RFC 2606).
    let (_, r) = reason(&t, "http://casewire-test.invalid:8080/x", second).await;
    assert!(r.starts_with("DNS error: "), "{r}");

    // https to a server that speaks plain HTTP: the handshake fails with rustls's own words.
    let (_, r) = reason(&t, &ep.https_url("localhost", "/x"), second).await;
    assert!(r.starts_with("TLS error: "), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_accumulate_while_the_endpoint_is_busy() {
    let ep = endpoint(None, |_| Reply::ack().delayed(Duration::from_millis(400))).await;
    let a = action("A", &ep.http_url("/a"), PayloadMode::Latest);
    // A long window: an idle endpoint must not wait for it.
    let config = EngineConfig {
        batch_window: Duration::from_secs(3),
        ..fast_config()
    };
    let h = Harness::start(catalog(vec![a.clone()]), config);
    let queued = Instant::now();
    let first = h.queue(&[&a], "first").await;
    let seen = ep.wait_for_requests(1, Duration::from_secs(5)).await;
    let latency = seen[0].at - queued;
    assert!(
        latency < Duration::from_secs(1),
        "an idle endpoint gets a lone notification at once, not after the 3 s window: {latency:?}"
    );
    let mut later = Vec::new();
    for i in 0..10 {
        later.extend(h.queue(&[&a], &format!("later {i}")).await);
    }
    let seen = ep.wait_for_requests(2, Duration::from_secs(5)).await;
    assert_eq!(seen[0].notification_ids(), first);
    assert_eq!(
        seen[1].notification_ids(),
        later,
        "the ten queued while the first message was in flight leave together, oldest first"
    );
    for id in &later {
        let n = h.wait_attempts(id, 1, Duration::from_secs(5)).await;
        assert_eq!(n.state, NotificationState::Delivered);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_slot_waits_the_batch_window_while_another_message_is_in_flight() {
    let ep = endpoint(None, |_| Reply::ack().delayed(Duration::from_millis(2000))).await;
    let a = action("A", &ep.http_url("/a"), PayloadMode::Latest);
    let config = EngineConfig {
        per_endpoint: 2,
        batch_window: Duration::from_millis(300),
        ..fast_config()
    };
    let h = Harness::start(catalog(vec![a.clone()]), config);
    h.queue(&[&a], "first").await;
    ep.wait_for_requests(1, Duration::from_secs(5)).await;
    let queued = Instant::now();
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend(h.queue(&[&a], &format!("burst {i}")).await);
    }
    let seen = ep.wait_for_requests(2, Duration::from_secs(5)).await;
    assert_eq!(
        seen[1].notification_ids(),
        burst,
        "the burst shares one message instead of taking the free slot one by one"
    );
    let waited = seen[1].at - queued;
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1600),
        "the burst waited about the window, not for the busy slot: {waited:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_when_idle_lingers_for_company() {
    let ep = endpoint(None, |_| Reply::ack()).await;
    let a = action("A", &ep.http_url("/a"), PayloadMode::Latest);
    let config = EngineConfig {
        batch_window: Duration::from_millis(400),
        batch_when_idle: true,
        ..fast_config()
    };
    let h = Harness::start(catalog(vec![a.clone()]), config);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.extend(h.queue(&[&a], &format!("c{i}")).await);
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let seen = ep.wait_for_requests(1, Duration::from_secs(5)).await;
    assert_eq!(seen[0].notification_ids(), ids, "one message for all three");
    let waited = seen[0].at - started;
    assert!(
        waited >= Duration::from_millis(350),
        "the first waited the window: {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ep.seen().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_action_timeout_backoff_concurrency_and_expiry() {
    let hold = endpoint(None, |_| Reply::Hold).await;
    let down = endpoint(None, |_| Reply::status(503, "")).await;
    let slow = action("Slow", &hold.http_url("/slow"), PayloadMode::Latest);
    let wide = action("Wide", &hold.http_url("/wide"), PayloadMode::Latest);
    let mut keep = action("Keep", &down.http_url("/keep"), PayloadMode::Latest);
    keep.use_dead_letter_queue = true;
    let mut drop = action("Drop", &down.http_url("/drop"), PayloadMode::Latest);
    drop.use_dead_letter_queue = false;
    let mut config = fast_config();
    config.actions.insert(
        "Slow".into(),
        ActionOverrides {
            attempt_timeout: Some(Duration::from_millis(300)),
            retry_base: Some(Duration::from_secs(2)),
            retry_max: Some(Duration::from_secs(10)),
            ..Default::default()
        },
    );
    config.actions.insert(
        "Wide".into(),
        ActionOverrides {
            per_endpoint: Some(3),
            batch_window: Some(Duration::ZERO),
            attempt_timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        },
    );
    let short_life = ActionOverrides {
        expiry: Some(Duration::from_millis(600)),
        retry_base: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    config.actions.insert("Keep".into(), short_life.clone());
    config.actions.insert("Drop".into(), short_life);
    let h = Harness::start(
        catalog(vec![slow.clone(), wide.clone(), keep.clone(), drop.clone()]),
        config,
    );

    let s = h.queue(&[&slow], "slow").await;
    let k = h.queue(&[&keep], "keep").await;
    let d = h.queue(&[&drop], "drop").await;
    // One at a time, each after the previous one is in flight, so that they cannot share a message.
    let wide_seen = || hold.seen().iter().filter(|r| r.path == "/wide").count();
    for i in 0..3 {
        h.queue(&[&wide], &format!("wide {i}")).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while wide_seen() < i + 1 {
            assert!(
                Instant::now() < deadline,
                "message {} of Wide did not start while {i} were in flight",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let n = h.wait_attempts(&s[0], 1, Duration::from_secs(5)).await;
    assert_eq!(
        n.last_error.as_deref(),
        Some("timeout: no complete answer within 300ms")
    );
    let log = h.store.attempts(Some(&s[0]), 10).await.unwrap();
    assert!(
        (250..1500).contains(&log[0].duration_ms),
        "the action's own timeout ended the attempt: {:?}",
        log[0]
    );
    let finished = log[0].started + log[0].duration_ms;
    let wait = n.next_attempt - finished;
    assert!(
        (1900..=2100).contains(&wait),
        "the action's own backoff (2 s, no jitter): {wait} ms"
    );

    // Three messages of Wide were in flight at once (the endpoint never answers): its concurrency is 3,
    // the global one 1.
    assert_eq!(wide_seen(), 3);

    // Expired after 600 ms of failures: kept as failed with the dead-letter flag, dropped without.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kept = h.store.get_notification(&k[0]).await.unwrap().unwrap();
        let dropped = h.store.get_notification(&d[0]).await.unwrap().unwrap();
        if kept.state != NotificationState::Pending && dropped.state != NotificationState::Pending {
            assert_eq!(kept.state, NotificationState::Failed);
            assert_eq!(
                kept.last_error.as_deref(),
                Some("expired: HTTP 503 Service Unavailable")
            );
            assert!(kept.attempts >= 3, "retried until expiry: {kept:?}");
            assert_eq!(dropped.state, NotificationState::Dropped);
            break;
        }
        assert!(Instant::now() < deadline, "{kept:?} {dropped:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
}
