//! The HTTP adapter against a real local HTTP server that answers by the notification's Status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use inbox::{Adapter, Pending, Secret};
use legacy_http::{HttpAdapter, HttpOptions};
use store::ApplyOutcome;

type Seen = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

async fn legacy(
    State(seen): State<Seen>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> (StatusCode, String) {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = body["fields"]["Status"].as_str().unwrap_or("").to_owned();
    seen.lock().unwrap().push((key, auth, body));
    match status.as_str() {
        "invalid" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Status invalid is not known".into(),
        ),
        "later" => (StatusCode::TOO_MANY_REQUESTS, "slow down".into()),
        "timeout408" => (StatusCode::REQUEST_TIMEOUT, String::new()),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "maintenance".into()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (StatusCode::OK, String::new())
        }
        _ => (StatusCode::CREATED, "{}".into()),
    }
}

fn pending(id: &str, status: &str) -> Pending {
    Pending {
        id: id.to_owned(),
        organization_id: "00D5g000004XyZaEAK".into(),
        action_id: "04k5g000000AbCdAAK".into(),
        object_type: "Case".into(),
        record_id: Some("500000000000001".into()),
        version: None,
        fields: vec![
            ("Id".into(), Some("500000000000001".into())),
            ("Status".into(), Some(status.into())),
        ],
    }
}

#[tokio::test]
async fn status_decides_and_every_post_carries_the_idempotency_key() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/tickets", axum::routing::post(legacy))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let adapter = HttpAdapter::new(HttpOptions {
        route: "legacy".into(),
        url: format!("http://{addr}/tickets"),
        timeout: Duration::from_millis(800),
        headers: vec![("X-Source".into(), "casewire".into())],
        bearer_token: Some(Secret::new("legacy-token")),
    })
    .unwrap();
    let statuses = ["Closed", "invalid", "later", "timeout408", "down", "slow"];
    let batch: Vec<Pending> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| pending(&format!("04l00000000000{i}"), s))
        .collect();
    let results = adapter.apply(&batch).await;
    assert_eq!(results[0], Ok(ApplyOutcome::Applied));
    let e = results[1].clone().unwrap_err();
    assert!(
        e.permanent && e.reason.contains("422") && e.reason.contains("Status invalid is not known"),
        "{e:?}"
    );
    for (i, code) in [(2, "429"), (3, "408"), (4, "503")] {
        let e = results[i].clone().unwrap_err();
        assert!(!e.permanent && e.reason.contains(code), "{i}: {e:?}");
    }
    let e = results[5].clone().unwrap_err();
    assert!(!e.permanent && e.reason.contains("timed out"), "{e:?}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), statuses.len());
    for (i, (key, auth, body)) in seen.iter().enumerate() {
        assert_eq!(key, &format!("04l00000000000{i}"));
        assert_eq!(auth, "Bearer legacy-token");
        assert_eq!(body["notification_id"], key.as_str());
        assert_eq!(body["fields"]["Status"], statuses[i]);
    }
}

#[tokio::test]
async fn nothing_listening_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let adapter = HttpAdapter::new(HttpOptions {
        route: "legacy".into(),
        url: format!("http://127.0.0.1:{port}/tickets"),
        timeout: Duration::from_secs(2),
        headers: vec![],
        bearer_token: None,
    })
    .unwrap();
    let results = adapter.apply(&[pending("04l000000000009", "Closed")]).await;
    let e = results[0].clone().unwrap_err();
    assert!(!e.permanent, "{e:?}");
    assert!(e.reason.to_lowercase().contains("connect"), "{e:?}");
}

#[test]
fn bad_urls_are_refused_at_start() {
    let options = |url: &str| HttpOptions {
        route: "legacy".into(),
        url: url.into(),
        timeout: Duration::from_secs(1),
        headers: vec![],
        bearer_token: None,
    };
    assert!(HttpAdapter::new(options("ftp://x/")).is_err());
    assert!(HttpAdapter::new(options("not a url")).is_err());
}
