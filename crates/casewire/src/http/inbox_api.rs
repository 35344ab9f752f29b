//! The inbox's SOAP listener. Every answer is SOAP over `text/xml`: the Ack after the commit, a SOAP 1.1
//! fault for everything else (unknown routes, wrong methods, oversized or malformed bodies, storage
//! trouble). Any content type and `SOAPAction` are accepted, as senders differ.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use inbox::Inbox;
use soap::FaultCode;

pub fn router(inbox: Arc<Inbox>) -> Router {
    Router::new()
        .route("/inbox/{route}", any(receive))
        .route("/inbox", any(no_route))
        .route("/inbox/", any(no_route))
        .with_state(inbox)
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

async fn no_route() -> Response {
    fault(
        StatusCode::NOT_FOUND,
        FaultCode::Client,
        "no inbox route in the URL: POST to /inbox/{route}",
    )
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    Path(route): Path<String>,
    request: Request,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return fault(
            StatusCode::METHOD_NOT_ALLOWED,
            FaultCode::Client,
            &format!(
                "{} is not accepted here: outbound messages are sent with POST",
                request.method()
            ),
        );
    }
    if inbox.route(&route).is_none() {
        return fault(
            StatusCode::NOT_FOUND,
            FaultCode::Client,
            &format!("no inbox route named {route:?}"),
        );
    }
    let limit = inbox.limits().max_body_bytes;
    let body = match axum::body::to_bytes(Body::new(request.into_body()), limit).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            return if too_large {
                fault(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    FaultCode::Client,
                    &format!("request body larger than {limit} bytes"),
                )
            } else {
                fault(
                    StatusCode::BAD_REQUEST,
                    FaultCode::Client,
                    &format!("cannot read the request body: {e}"),
                )
            };
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    match inbox
        .receive(&route, &inbox::Caller::default(), &body, now)
        .await
    {
        Ok(_) => xml(StatusCode::OK, soap::encode_ack(true).to_owned()),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if matches!(e, inbox::InboxError::Store(_)) {
                tracing::error!(route, "inbox cannot store: {e}");
            } else {
                tracing::info!(route, "inbox refused a request: {e}");
            }
            fault(status, e.fault_code(), &e.to_string())
        }
    }
}
