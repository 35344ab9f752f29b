//! The behaviour every backend must show, as one suite. A backend's tests call [`run_all`] on a fresh,
//! empty store. Panics (assertion failures) name the broken property.

use crate::*;

fn notification(id: &str, action: &str, record: &str, created: Millis) -> NewNotification {
    NewNotification {
        id: id.to_owned(),
        action: action.to_owned(),
        endpoint: format!("http://127.0.0.1:9/{action}"),
        object: "Case".to_owned(),
        record_id: record.to_owned(),
        snapshot: format!(r#"{{"Id":"{record}"}}"#),
        created,
    }
}

fn write(
    id: &str,
    version: Option<i64>,
    notifications: Vec<NewNotification>,
    now: Millis,
) -> RecordWrite {
    RecordWrite {
        object: "Case".to_owned(),
        id: id.to_owned(),
        data: format!(r#"{{"Id":"{id}","v":{}}}"#, version.unwrap_or(0)),
        deleted: false,
        expected_version: version,
        notifications,
        now,
    }
}

fn received(id: &str, record: &str, version: Option<Millis>, at: Millis) -> ReceivedNotification {
    ReceivedNotification {
        id: id.to_owned(),
        route: "legacy".to_owned(),
        organization_id: "00D5g000004XyZaEAK".to_owned(),
        action_id: "04k5g000000AbCdAAK".to_owned(),
        object_type: "Case".to_owned(),
        record_id: Some(record.to_owned()),
        version,
        fields: format!(r#"[["Id","{record}"]]"#),
        received: at,
    }
}

/// Runs every check of the suite.
pub async fn run_all<S: DeskStore + InboxStore>(store: &S) {
    sequences_count_up(store).await;
    record_and_outbox_commit_together(store).await;
    claims_lease_and_expire(store).await;
    attempts_decide_fates(store).await;
    operator_retry_and_delete(store).await;
    due_summary_counts_what_is_due(store).await;
    records_list_by_object_in_id_pages(store).await;
    tokens_are_found_by_hash_until_they_expire(store).await;
    inbox_stores_each_id_once(store).await;
    inbox_applies_in_version_order_and_quarantines(store).await;
    inbox_tracks_applied_versions_and_operator_quarantine(store).await;
}

async fn sequences_count_up<S: DeskStore>(store: &S) {
    assert_eq!(store.next_sequence("CaseNumber").await.unwrap(), 1);
    assert_eq!(store.next_sequence("CaseNumber").await.unwrap(), 2);
    assert_eq!(store.next_sequence("Other").await.unwrap(), 1);
}

async fn record_and_outbox_commit_together<S: DeskStore>(store: &S) {
    let v = store
        .save_record(write(
            "500A",
            None,
            vec![notification("04lA1", "a1", "500A", 1_000)],
            1_000,
        ))
        .await
        .unwrap();
    assert_eq!(v, 1);
    let row = store
        .get_record("Case", "500A")
        .await
        .unwrap()
        .expect("record stored");
    assert_eq!(row.version, 1);

    // A second insert of the same id conflicts and queues nothing.
    let dup = store
        .save_record(write(
            "500A",
            None,
            vec![notification("04lA2", "a1", "500A", 1_000)],
            1_000,
        ))
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "duplicate insert: {dup:?}"
    );
    assert!(
        store.get_notification("04lA2").await.unwrap().is_none(),
        "outbox row of a failed write must not exist"
    );

    // A stale update conflicts and queues nothing; a current one succeeds with its notifications.
    let stale = store
        .save_record(write(
            "500A",
            Some(7),
            vec![notification("04lA3", "a1", "500A", 2_000)],
            2_000,
        ))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    assert!(store.get_notification("04lA3").await.unwrap().is_none());
    let v2 = store
        .save_record(write(
            "500A",
            Some(1),
            vec![notification("04lA4", "a1", "500A", 2_000)],
            2_000,
        ))
        .await
        .unwrap();
    assert_eq!(v2, 2);
    let rows = store
        .get_records(&["500A".to_owned(), "nope".to_owned()])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].version, 2);
    let queued = store
        .get_notification("04lA4")
        .await
        .unwrap()
        .expect("queued with the write");
    assert_eq!(queued.state, NotificationState::Pending);
    assert_eq!(queued.next_attempt, 2_000);
}

async fn records_list_by_object_in_id_pages<S: DeskStore>(store: &S) {
    let put = |object: &str, id: &str, deleted: bool| RecordWrite {
        object: object.to_owned(),
        id: id.to_owned(),
        data: format!(r#"{{"Id":"{id}"}}"#),
        deleted,
        expected_version: None,
        notifications: Vec::new(),
        now: 5_000,
    };
    for (object, id, deleted) in [
        ("Account", "001L3", false),
        ("Account", "001L1", false),
        ("Account", "001L2", true),
        ("Account", "001L4", false),
        ("Contact", "003L1", false),
    ] {
        store.save_record(put(object, id, deleted)).await.unwrap();
    }
    let ids = |rows: Vec<RecordRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_records("Account", None, 10).await.unwrap()),
        ["001L1", "001L3", "001L4"],
        "live records of one object, in id order"
    );
    assert_eq!(
        ids(store.list_records("Account", None, 2).await.unwrap()),
        ["001L1", "001L3"]
    );
    assert_eq!(
        ids(store
            .list_records("Account", Some("001L3"), 2)
            .await
            .unwrap()),
        ["001L4"],
        "the next page starts after the last id seen"
    );
    assert!(
        store
            .list_records("Lead", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn tokens_are_found_by_hash_until_they_expire<S: DeskStore>(store: &S) {
    let token = |hash: &str, expires: Option<Millis>| TokenRow {
        hash: hash.to_owned(),
        user: "integration@example.com".to_owned(),
        label: "test".to_owned(),
        created: 1_000,
        expires,
    };
    store.put_token(token("aa11", None)).await.unwrap();
    store.put_token(token("bb22", Some(2_000))).await.unwrap();
    assert_eq!(
        store.find_token("aa11", 9_999_999).await.unwrap(),
        Some(token("aa11", None))
    );
    assert_eq!(
        store.find_token("bb22", 1_999).await.unwrap(),
        Some(token("bb22", Some(2_000)))
    );
    assert_eq!(
        store.find_token("bb22", 2_000).await.unwrap(),
        None,
        "expired at its expiry time"
    );
    assert_eq!(store.find_token("cc33", 0).await.unwrap(), None);
    assert!(
        matches!(
            store.put_token(token("aa11", None)).await,
            Err(StoreError::Conflict(_))
        ),
        "a hash is stored once"
    );
}

async fn claims_lease_and_expire<S: DeskStore>(store: &S) {
    let ns = (0..5)
        .map(|i| notification(&format!("04lB{i}"), "b", "500B", 10_000 + i))
        .collect();
    store
        .save_record(write("500B", None, ns, 10_000))
        .await
        .unwrap();
    let due_of_b = |now| async move {
        let summary = store.due_summary(now).await.unwrap();
        summary
            .iter()
            .find(|d| d.action == "b")
            .map(|d| d.due)
            .unwrap_or(0)
    };
    assert_eq!(due_of_b(9_999).await, 0, "not due before next_attempt");
    assert_eq!(due_of_b(20_000).await, 5);

    let first = store.claim("b", 20_000, 80_000, 3).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["04lB0", "04lB1", "04lB2"],
        "oldest first, limited"
    );
    let second = store.claim("b", 20_000, 80_000, 10).await.unwrap();
    assert_eq!(
        second.len(),
        2,
        "leased notifications are not claimed twice"
    );
    assert!(
        store
            .claim("b", 20_001, 80_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        due_of_b(20_001).await,
        0,
        "claimed notifications are not due while leased"
    );

    // A lease that runs out makes the notifications claimable again (the holder died).
    let again = store.claim("b", 80_000, 140_000, 10).await.unwrap();
    assert_eq!(again.len(), 5, "expired leases are reclaimed");
    let ids: Vec<String> = again.iter().map(|n| n.id.clone()).collect();
    store.release(&ids).await.unwrap();
    assert_eq!(
        store.claim("b", 80_001, 140_000, 10).await.unwrap().len(),
        5,
        "released claims are due at once"
    );
}

async fn attempts_decide_fates<S: DeskStore>(store: &S) {
    let ids: Vec<String> = (0..5).map(|i| format!("04lB{i}")).collect();
    let attempt = AttemptRecord {
        action: "b".into(),
        endpoint: "http://127.0.0.1:9/b".into(),
        started: 150_000,
        duration_ms: 12,
        http_status: Some(503),
        delivered: false,
        reason: Some("HTTP 503".into()),
        notification_ids: ids.clone(),
    };
    store
        .finish_attempt(
            attempt.clone(),
            vec![
                (ids[0].clone(), AfterAttempt::Delivered),
                (
                    ids[1].clone(),
                    AfterAttempt::Retry {
                        next_attempt: 180_000,
                    },
                ),
                (ids[2].clone(), AfterAttempt::Expired { keep: true }),
                (ids[3].clone(), AfterAttempt::Expired { keep: false }),
                (
                    ids[4].clone(),
                    AfterAttempt::Retry {
                        next_attempt: 190_000,
                    },
                ),
            ],
        )
        .await
        .unwrap();
    let get = |i: usize| {
        let id = ids[i].clone();
        async move { store.get_notification(&id).await.unwrap().unwrap() }
    };
    let delivered = get(0).await;
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.finished, Some(150_012));
    let retry = get(1).await;
    assert_eq!(
        (retry.state, retry.attempts, retry.next_attempt),
        (NotificationState::Pending, 1, 180_000)
    );
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(get(2).await.state, NotificationState::Failed);
    assert!(
        get(2)
            .await
            .last_error
            .unwrap_or_default()
            .contains("expired")
    );
    assert_eq!(get(3).await.state, NotificationState::Dropped);

    let log = store.attempts(Some("04lB1"), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].http_status, Some(503));
    assert_eq!(log[0].notification_ids, ids);
    assert!(!store.attempts(None, 0).await.unwrap().is_empty());

    // A notification already delivered is not changed by a late result of a stale lease holder.
    store
        .finish_attempt(
            attempt,
            vec![(ids[0].clone(), AfterAttempt::Retry { next_attempt: 1 })],
        )
        .await
        .unwrap();
    assert_eq!(get(0).await.state, NotificationState::Delivered);
}

async fn operator_retry_and_delete<S: DeskStore>(store: &S) {
    // 04lB1 is pending until 180_000; retry makes it due now. 04lB2 failed; resend makes it pending.
    let n = store
        .retry_now(&["04lB1".into(), "04lB2".into(), "04lB0".into()], 160_000)
        .await
        .unwrap();
    assert_eq!(n, 2, "delivered notifications are not re-sent by retry");
    let b1 = store.get_notification("04lB1").await.unwrap().unwrap();
    assert_eq!(b1.next_attempt, 160_000);
    let b2 = store.get_notification("04lB2").await.unwrap().unwrap();
    assert_eq!(b2.state, NotificationState::Pending);

    let deleted = store
        .delete_notifications(&["04lB4".into(), "04lB0".into()], "alice", 170_000)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let b4 = store.get_notification("04lB4").await.unwrap().unwrap();
    assert_eq!(b4.state, NotificationState::Deleted);
    assert_eq!(b4.note.as_deref(), Some("deleted by alice"));
    assert_eq!(b4.finished, Some(170_000));

    let failed_or_pending = store
        .list_queue(&QueueFilter {
            action: Some("b".into()),
            states: vec![NotificationState::Pending],
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = failed_or_pending.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, vec!["04lB1", "04lB2"]);
    let counts = store.queue_counts().await.unwrap();
    assert_eq!(counts.deleted, 1);
    assert_eq!(counts.dropped, 1);
    assert!(counts.delivered >= 1);
}

async fn due_summary_counts_what_is_due<S: DeskStore>(store: &S) {
    let ns = (0..3)
        .map(|i| notification(&format!("04lS{i}"), "s", "500S", 1_000_000 + 10 * i))
        .collect();
    store
        .save_record(write("500S", None, ns, 1_000_000))
        .await
        .unwrap();
    let summary = |now: Millis| async move {
        store
            .due_summary(now)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.action == "s")
    };
    let before = summary(999_999)
        .await
        .expect("pending notifications are listed");
    assert_eq!(
        (before.due, before.oldest_due, before.next_at),
        (0, None, Some(1_000_000)),
        "nothing due yet: {before:?}"
    );
    let some = summary(1_000_010).await.unwrap();
    assert_eq!(
        (some.due, some.oldest_due, some.next_at),
        (2, Some(1_000_000), Some(1_000_020)),
        "{some:?}"
    );
    let claimed = store.claim("s", 1_000_020, 1_005_000, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let leased = summary(1_000_020).await.unwrap();
    assert_eq!(
        (leased.due, leased.oldest_due, leased.next_at),
        (2, Some(1_000_010), Some(1_005_000)),
        "a leased notification is not due until its lease ends: {leased:?}"
    );
    let ids: Vec<String> = (0..3).map(|i| format!("04lS{i}")).collect();
    store
        .finish_attempt(
            AttemptRecord {
                action: "s".into(),
                endpoint: "http://127.0.0.1:9/s".into(),
                started: 1_000_030,
                duration_ms: 1,
                http_status: Some(200),
                delivered: true,
                reason: None,
                notification_ids: ids.clone(),
            },
            ids.into_iter()
                .map(|id| (id, AfterAttempt::Delivered))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(1_000_040).await,
        None,
        "only pending notifications count"
    );
}

async fn inbox_stores_each_id_once<S: InboxStore>(store: &S) {
    let batch = vec![
        received("04lI1", "500I", Some(5), 1),
        received("04lI2", "500I", Some(3), 1),
    ];
    assert_eq!(store.store_received(batch.clone()).await.unwrap(), 2);
    assert_eq!(
        store.store_received(batch).await.unwrap(),
        0,
        "a repeat stores nothing"
    );
    // Concurrent copies of the same notification: stored once, both succeed.
    let (a, b) = tokio::join!(
        store.store_received(vec![received("04lI3", "500J", None, 2)]),
        store.store_received(vec![received("04lI3", "500J", None, 2)])
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let row = store.get_received("04lI1").await.unwrap().unwrap();
    assert_eq!(row.state, InboxState::Received);
    assert_eq!(row.fields, r#"[["Id","500I"]]"#);
    assert_eq!(store.inbox_counts().await.unwrap().received, 3);
}

async fn inbox_applies_in_version_order_and_quarantines<S: InboxStore>(store: &S) {
    let due = store.due_for_apply(10, 100).await.unwrap();
    let order: Vec<&str> = due.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        order,
        vec!["04lI2", "04lI1", "04lI3"],
        "per record, oldest version first"
    );
    store
        .record_applied(
            vec![
                ("04lI2".into(), ApplyOutcome::Applied),
                ("04lI1".into(), ApplyOutcome::Stale("older".into())),
            ],
            11,
        )
        .await
        .unwrap();
    store
        .record_apply_failure("04lI3", "locked", Some(500), 12)
        .await
        .unwrap();
    assert!(
        store.due_for_apply(100, 100).await.unwrap().is_empty(),
        "retry waits for its time"
    );
    assert_eq!(store.next_apply_due().await.unwrap(), Some(500));
    store
        .record_apply_failure("04lI3", "bad data", None, 600)
        .await
        .unwrap();
    let q = store.get_received("04lI3").await.unwrap().unwrap();
    assert_eq!((q.state, q.attempts), (InboxState::Quarantined, 2));
    assert_eq!(q.last_error.as_deref(), Some("bad data"));
    let quarantined = store
        .list_inbox(&InboxFilter {
            states: vec![InboxState::Quarantined],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(store.replay(&["04lI3".into()], 700).await.unwrap(), 1);
    assert_eq!(store.due_for_apply(700, 10).await.unwrap().len(), 1);
    let counts = store.inbox_counts().await.unwrap();
    assert_eq!(
        (
            counts.applied,
            counts.stale,
            counts.received,
            counts.quarantined
        ),
        (1, 1, 1, 0)
    );
}

async fn inbox_tracks_applied_versions_and_operator_quarantine<S: InboxStore>(store: &S) {
    let mut other_route = received("04lV4", "500V", Some(900), 1);
    other_route.route = "other".to_owned();
    store
        .store_received(vec![
            received("04lV1", "500V", Some(100), 1),
            received("04lV2", "500V", Some(300), 1),
            received("04lV3", "500V", None, 1),
            other_route,
            received("04lV5", "500W", Some(50), 1),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .newest_applied_version("legacy", "Case", "500V")
            .await
            .unwrap(),
        None,
        "nothing applied yet"
    );
    store
        .record_applied(
            vec![
                ("04lV1".into(), ApplyOutcome::Applied),
                ("04lV2".into(), ApplyOutcome::Stale("older".into())),
                ("04lV3".into(), ApplyOutcome::Applied),
                ("04lV4".into(), ApplyOutcome::Applied),
            ],
            20,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .newest_applied_version("legacy", "Case", "500V")
            .await
            .unwrap(),
        Some(100),
        "only applied notifications of this route count; stale and unversioned do not"
    );
    assert_eq!(
        store
            .newest_applied_version("other", "Case", "500V")
            .await
            .unwrap(),
        Some(900)
    );
    assert_eq!(
        store
            .newest_applied_version("legacy", "Account", "500V")
            .await
            .unwrap(),
        None
    );

    let changed = store
        .quarantine(
            &["04lV5".into(), "04lV1".into(), "04lNone".into()],
            "operator: bad data",
            30,
        )
        .await
        .unwrap();
    assert_eq!(changed, 1, "only a waiting notification is quarantined");
    let q = store.get_received("04lV5").await.unwrap().unwrap();
    assert_eq!(q.state, InboxState::Quarantined);
    assert_eq!(q.attempts, 0, "an operator's quarantine is not an attempt");
    assert_eq!(q.last_error.as_deref(), Some("operator: bad data"));
    assert_eq!(q.finished, Some(30));
    assert_eq!(
        store.get_received("04lV1").await.unwrap().unwrap().state,
        InboxState::Applied,
        "an applied notification stays applied"
    );
}
