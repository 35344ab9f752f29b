//! The request path and the applier against a real SQLite inbox database: what is refused stores
//! nothing, what is acked is stored, and an adapter that keeps no versions of its own still never sees
//! a notification older than one it applied.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use inbox::{
    Adapter, Applier, ApplierConfig, ApplyError, Caller, Inbox, InboxError, Pending, Route,
    RouteAuth, Secret,
};
use store::{ApplyOutcome, InboxState, InboxStore};
use store_sqlite::{SqliteOptions, SqliteStore};
use tokio::sync::Notify;

const ORG: &str = "00D5g000004XyZaEAK";
const ACTION: &str = "04k5g000000AbCdAAK";

fn message(object: &str, notifications: &[(&str, &str, Option<&str>, &str)]) -> Vec<u8> {
    let mut body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORG}</OrganizationId>
   <ActionId>{ACTION}</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://x</EnterpriseUrl>
   <PartnerUrl>https://x</PartnerUrl>"#
    );
    for (id, record, modstamp, status) in notifications {
        let stamp = modstamp
            .map(|m| format!("<sf:SystemModstamp>{m}</sf:SystemModstamp>"))
            .unwrap_or_default();
        body.push_str(&format!(
            r#"
   <Notification><Id>{id}</Id><sObject xsi:type="sf:{object}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>{record}</sf:Id><sf:Status>{status}</sf:Status>{stamp}</sObject></Notification>"#
        ));
    }
    body.push_str("\n  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>");
    body.into_bytes()
}

/// Records what it was given; fails notifications whose Status is "fail".
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(String, Option<String>)>>,
}

#[async_trait]
impl Adapter for Recorder {
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        batch
            .iter()
            .map(|p| {
                if p.field("Status") == Some("fail") {
                    return Err(ApplyError::permanent("told to fail"));
                }
                self.applied
                    .lock()
                    .unwrap()
                    .push((p.id.clone(), p.field("Status").map(str::to_owned)));
                Ok(ApplyOutcome::Applied)
            })
            .collect()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    inbox: Inbox,
    recorder: Arc<Recorder>,
    applier: Applier,
}

fn setup(route: impl FnOnce(&mut Route)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).unwrap());
    let recorder = Arc::new(Recorder::default());
    let mut r = Route {
        name: "legacy".into(),
        allowed_org_ids: vec![],
        allowed_action_ids: vec![],
        object: None,
        auth: RouteAuth::default(),
        version_fields: Route::default_version_fields(),
        ids: model::IdValidation::Lenient,
        adapter: recorder.clone(),
    };
    route(&mut r);
    let signal = Arc::new(Notify::new());
    let inbox = Inbox::new(
        store.clone(),
        vec![r],
        soap::Limits::default(),
        signal.clone(),
    );
    let adapters: HashMap<String, Arc<dyn Adapter>> =
        HashMap::from([("legacy".to_owned(), recorder.clone() as Arc<dyn Adapter>)]);
    let applier = Applier::new(store.clone(), adapters, ApplierConfig::default(), signal);
    Setup {
        _dir: dir,
        store,
        inbox,
        recorder,
        applier,
    }
}

fn anyone() -> Caller {
    Caller {
        peer: Some("127.0.0.1".parse().unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn refused_requests_store_nothing() {
    let s = setup(|r| {
        r.allowed_org_ids = vec![inbox::org_id_for_allowlist(ORG).unwrap()];
        r.allowed_action_ids = vec![inbox::org_id_for_allowlist(ACTION).unwrap()];
        r.object = Some("Case".into());
        r.auth.bearer_token = Some(Secret::new("t0ken"));
    });
    let good = message(
        "Case",
        &[("04l000000000001", "500000000000001", None, "New")],
    );
    let mut caller = anyone();
    let err = s
        .inbox
        .receive("legacy", &caller, &good, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, InboxError::Unauthorized(_)), "{err}");
    assert_eq!(err.http_status(), 401);

    caller.authorization = Some("Bearer t0ken".into());
    let lead = message(
        "Lead",
        &[("04l000000000002", "00Q000000000001", None, "New")],
    );
    let err = s
        .inbox
        .receive("legacy", &caller, &lead, 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("carries a Lead but route legacy takes Case only"),
        "{err}"
    );
    assert_eq!(
        (err.http_status(), err.fault_code()),
        (500, soap::FaultCode::Client)
    );

    let other_action = String::from_utf8(good.clone())
        .unwrap()
        .replace(ACTION, "04k5g000000ZZZZAAA");
    let err = s
        .inbox
        .receive("legacy", &caller, other_action.as_bytes(), 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("action \"04k5g000000ZZZZAAA\" is not allowed"),
        "{err}"
    );

    let other_org = String::from_utf8(good.clone())
        .unwrap()
        .replace(ORG, "00D5g000004XyZbEAK");
    let err = s
        .inbox
        .receive("legacy", &caller, other_org.as_bytes(), 1)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 403);
    assert_eq!(s.store.inbox_counts().await.unwrap().received, 0);

    let receipt = s.inbox.receive("legacy", &caller, &good, 1).await.unwrap();
    assert_eq!((receipt.notifications, receipt.newly_stored), (1, 1));
    assert_eq!(s.store.inbox_counts().await.unwrap().received, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_store_once_and_all_succeed() {
    let s = setup(|_| {});
    let body = message(
        "Case",
        &[("04l000000000009", "500000000000009", None, "New")],
    );
    let caller = anyone();
    let receive = || s.inbox.receive("legacy", &caller, &body, 5);
    // Polled together: the store sees the copies at the same time.
    let (a, b, c, d) = tokio::join!(receive(), receive(), receive(), receive());
    let stored: usize = [a, b, c, d]
        .into_iter()
        .map(|r| r.expect("every copy is acked").newly_stored)
        .sum();
    assert_eq!(stored, 1);
    assert_eq!(s.store.inbox_counts().await.unwrap().received, 1);
}

#[tokio::test]
async fn an_older_version_is_skipped_for_adapters_without_their_own_ledger() {
    let s = setup(|_| {});
    let caller = anyone();
    let newer = message(
        "Case",
        &[(
            "04l00000000000B",
            "500000000000001",
            Some("2026-01-01T10:00:05.000Z"),
            "Closed",
        )],
    );
    let older = message(
        "Case",
        &[(
            "04l00000000000A",
            "500000000000001",
            Some("2026-01-01T10:00:00.000Z"),
            "New",
        )],
    );
    let unversioned = message(
        "Case",
        &[("04l00000000000C", "500000000000001", None, "Other")],
    );
    s.inbox.receive("legacy", &caller, &newer, 1).await.unwrap();
    assert!(s.applier.round().await.unwrap());
    s.inbox.receive("legacy", &caller, &older, 2).await.unwrap();
    s.inbox
        .receive("legacy", &caller, &unversioned, 3)
        .await
        .unwrap();
    assert!(s.applier.round().await.unwrap());
    assert!(!s.applier.round().await.unwrap(), "nothing left");

    assert_eq!(
        *s.recorder.applied.lock().unwrap(),
        vec![
            ("04l00000000000B".to_owned(), Some("Closed".to_owned())),
            ("04l00000000000C".to_owned(), Some("Other".to_owned())),
        ],
        "the older one never reached the adapter; one without a version applies in arrival order"
    );
    let stale = s
        .store
        .get_received("04l00000000000A")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.state, InboxState::Stale);
    assert_eq!(
        stale.last_error.as_deref(),
        Some(
            "version 2026-01-01T10:00:00.000Z is older than the applied version 2026-01-01T10:00:05.000Z"
        )
    );
}

#[tokio::test]
async fn within_one_round_a_records_versions_apply_oldest_first() {
    let s = setup(|_| {});
    let caller = anyone();
    let both = message(
        "Case",
        &[
            (
                "04l00000000000E",
                "500000000000002",
                Some("2026-01-01T10:00:09.000Z"),
                "Closed",
            ),
            (
                "04l00000000000D",
                "500000000000002",
                Some("2026-01-01T10:00:01.000Z"),
                "New",
            ),
            ("04l00000000000F", "500000000000003", None, "fail"),
        ],
    );
    s.inbox.receive("legacy", &caller, &both, 1).await.unwrap();
    s.applier.round().await.unwrap();
    let applied: Vec<String> = s
        .recorder
        .applied
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(applied, vec!["04l00000000000D", "04l00000000000E"]);
    let q = s
        .store
        .get_received("04l00000000000F")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.state, InboxState::Quarantined, "a permanent failure");
    assert_eq!(q.last_error.as_deref(), Some("told to fail"));
}
