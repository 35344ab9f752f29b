//! The inbox's SOAP listener. Every answer is SOAP over `text/xml`: the Ack after the commit, a SOAP 1.1
//! fault for everything else (unknown routes and paths, wrong methods, missing credentials, oversized,
//! slow or malformed bodies, storage trouble). Any content type and `SOAPAction` are accepted, as
//! senders differ.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use inbox::{Caller, Inbox};
use soap::FaultCode;

use super::serve::PeerInfo;

#[derive(Clone)]
struct InboxHttp {
    inbox: Arc<Inbox>,
    body_timeout: Duration,
}

pub fn router(inbox: Arc<Inbox>, body_timeout: Duration) -> Router {
    Router::new()
        .route("/inbox/{*route}", any(receive))
        .route("/inbox", any(no_route))
        .route("/inbox/", any(no_route))
        .with_state(InboxHttp {
            inbox,
            body_timeout,
        })
}

/// For paths no route serves, on the inbox's listener: a SOAP fault rather than an empty 404.
pub async fn unknown_path(request: Request) -> Response {
    refused("unknown", "unknown_path");
    fault(
        StatusCode::NOT_FOUND,
        FaultCode::Client,
        &format!(
            "nothing is served at {}: outbound messages are POSTed to /inbox/{{route}}",
            request.uri().path()
        ),
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

pub fn fault(status: StatusCode, code: FaultCode, message: &str) -> Response {
    xml(status, soap::encode_fault(code, message))
}

/// Counts a refusal decided here (the inbox crate counts its own).
fn refused(route: &str, why: &'static str) {
    metrics::counter!("casewire_inbox_refused_total", "route" => route.to_owned(), "why" => why)
        .increment(1);
}

async fn no_route() -> Response {
    refused("unknown", "unknown_route");
    fault(
        StatusCode::NOT_FOUND,
        FaultCode::Client,
        "no inbox route in the URL: POST to /inbox/{route}",
    )
}

fn caller(headers: &HeaderMap, peer: Option<&PeerInfo>) -> Caller {
    let text = |name: header::HeaderName| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    Caller {
        peer: peer.map(|p| p.addr.ip()),
        forwarded_for: text(header::HeaderName::from_static("x-forwarded-for")),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        client_subject: peer.and_then(|p| p.client_subject.clone()),
    }
}

fn error_response(route: &str, e: &inbox::InboxError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if matches!(e, inbox::InboxError::Store(_)) {
        tracing::error!(route, "inbox cannot store: {e}");
    } else {
        tracing::info!(route, "inbox refused a request: {e}");
    }
    let mut response = fault(status, e.fault_code(), &e.to_string());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"casewire inbox\", Bearer"),
        );
    }
    response
}

async fn receive(State(state): State<InboxHttp>, request: Request) -> Response {
    let inbox = &state.inbox;
    // Taken from the raw path so that no extractor can answer with a non-SOAP rejection.
    let route = request
        .uri()
        .path()
        .strip_prefix("/inbox/")
        .unwrap_or("")
        .to_owned();
    if inbox.route(&route).is_none() {
        refused("unknown", "unknown_route");
        return fault(
            StatusCode::NOT_FOUND,
            FaultCode::Client,
            &format!("no inbox route named {route:?}"),
        );
    }
    if request.method() != axum::http::Method::POST {
        refused(&route, "method");
        return fault(
            StatusCode::METHOD_NOT_ALLOWED,
            FaultCode::Client,
            &format!(
                "{} is not accepted here: outbound messages are sent with POST",
                request.method()
            ),
        );
    }
    let caller = caller(request.headers(), request.extensions().get::<PeerInfo>());
    // Credentials first: an unauthenticated sender's body is never read.
    if let Err(e) = inbox.authenticate(&route, &caller) {
        return error_response(&route, &e);
    }
    let limit = inbox.limits().max_body_bytes;
    let too_large = || {
        refused(&route, "too_large");
        fault(
            StatusCode::PAYLOAD_TOO_LARGE,
            FaultCode::Client,
            &format!("request body larger than {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let read = axum::body::to_bytes(Body::new(request.into_body()), limit);
    let body = match tokio::time::timeout(state.body_timeout, read).await {
        Err(_) => {
            refused(&route, "timeout");
            return fault(
                StatusCode::REQUEST_TIMEOUT,
                FaultCode::Client,
                &format!(
                    "the request body did not arrive within {:?}",
                    state.body_timeout
                ),
            );
        }
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            if is_limit {
                return too_large();
            }
            refused(&route, "unreadable");
            return fault(
                StatusCode::BAD_REQUEST,
                FaultCode::Client,
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    match inbox.receive(&route, &caller, &body, now).await {
        Ok(_) => xml(StatusCode::OK, soap::encode_ack(true).to_owned()),
        Err(e) => error_response(&route, &e),
    }
}
