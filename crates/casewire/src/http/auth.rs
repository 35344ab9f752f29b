//! Bearer-token authentication of the desk's data API, as Salesforce's REST API does it: a request
//! without a valid session gets 401 with `INVALID_SESSION_ID`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use desk::Desk;
use serde_json::json;

/// The token of `Authorization: Bearer <token>` (or the older `OAuth <token>` that Salesforce also
/// accepts).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") || scheme.eq_ignore_ascii_case("OAuth"))
        .then_some(token)
        .filter(|t| !t.is_empty())
}

fn invalid_session() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Token")],
        axum::Json(
            json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }]),
        ),
    )
        .into_response()
}

/// Lets the request through with the caller's [`desk::User`] in its extensions, or answers 401.
pub async fn require_session(
    State(desk): State<Arc<Desk>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !desk.auth_required() {
        return next.run(request).await;
    }
    let Some(token) = bearer(request.headers()) else {
        return invalid_session();
    };
    match desk.authenticate(token).await {
        Ok(Some(user)) => {
            let user = user.clone();
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Ok(None) => invalid_session(),
        Err(e) => {
            tracing::warn!("desk: cannot check a token: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!([{ "message": "the desk cannot check sessions now; try again", "errorCode": "SERVER_UNAVAILABLE" }])),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_oauth_schemes_carry_the_token() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            bearer(&h).map(str::to_owned)
        };
        assert_eq!(with("Bearer 00Dx!abc").as_deref(), Some("00Dx!abc"));
        assert_eq!(with("bearer 00Dx!abc").as_deref(), Some("00Dx!abc"));
        assert_eq!(with("OAuth 00Dx!abc").as_deref(), Some("00Dx!abc"));
        assert_eq!(with("Basic dXNlcjpwdw=="), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
