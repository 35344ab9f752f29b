//! The desk's REST API in the shape of Salesforce's sObject REST: handlers parse, call the desk, and
//! map its errors to Salesforce's error body (`[{"message", "errorCode", "fields"}]`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use desk::{Desk, DeskError};
use serde_json::{Map, Value, json};

use super::sobjects;

pub fn router(desk: Arc<Desk>) -> Router {
    // The data API answers only callers with a valid session; the version list is public, as in
    // Salesforce. Clients such as simple-salesforce add trailing slashes, so both forms are routed.
    let data = Router::new()
        .route("/services/data/{version}", get(sobjects::resources))
        .route("/services/data/{version}/", get(sobjects::resources))
        .route(
            "/services/data/{version}/sobjects",
            get(sobjects::describe_global),
        )
        .route(
            "/services/data/{version}/sobjects/",
            get(sobjects::describe_global),
        )
        .route(
            "/services/data/{version}/sobjects/{object}",
            get(sobjects::object_info).post(create),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/",
            get(sobjects::object_info).post(create),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(sobjects::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe/",
            get(sobjects::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/services/data/{version}/query", get(sobjects::query))
        .route("/services/data/{version}/query/", get(sobjects::query))
        .route_layer(axum::middleware::from_fn_with_state(
            desk.clone(),
            super::auth::require_session,
        ));
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(data)
        .route("/admin/queue/counts", get(queue_counts))
        .route("/services/wsdl/{action}", get(action_wsdl))
        .with_state(desk)
}

fn error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    fields: &[String],
) -> Response {
    ApiError::new(status, code, message, fields).into_response()
}

/// A REST error in Salesforce's shape, small enough to travel in a `Result`.
pub(crate) struct ApiError(Box<(StatusCode, Value)>);

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        fields: &[String],
    ) -> Self {
        Self(Box::new((
            status,
            json!([{ "message": message.into(), "errorCode": code, "fields": fields }]),
        )))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = *self.0;
        (status, Json(body)).into_response()
    }
}

pub(crate) fn desk_error(e: DeskError) -> Response {
    match e {
        DeskError::UnknownObject(object) => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "The requested resource does not exist: sObject type '{object}' is not supported."
            ),
            &[],
        ),
        DeskError::NotFound { .. } => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        ),
        DeskError::Invalid(errors) => {
            (StatusCode::BAD_REQUEST, Json(json!(errors))).into_response()
        }
        DeskError::Contended => error(
            StatusCode::CONFLICT,
            "UNABLE_TO_LOCK_ROW",
            e.to_string(),
            &[],
        ),
        DeskError::UnknownUser(user) => error(
            StatusCode::BAD_REQUEST,
            "INVALID_CROSS_REFERENCE_KEY",
            format!("no user {user} is configured"),
            &[],
        ),
        DeskError::Store(store::StoreError::Unavailable(m)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            m,
            &[],
        ),
        DeskError::Store(other) => {
            tracing::error!("desk storage error: {other}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                other.to_string(),
                &[],
            )
        }
    }
}

/// Parses a JSON object body with an error in Salesforce's shape for anything else.
fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the request body must be a JSON object of field names and values",
            &[],
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            format!("the request body is not valid JSON: {e}"),
            &[],
        )),
    }
}

pub(crate) fn check_version(version: &str) -> Result<(), ApiError> {
    let ok = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: API version {version:?}"),
            &[],
        ))
    }
}

async fn versions() -> Json<Value> {
    let list: Vec<Value> = (50..=60)
        .map(|v| json!({ "label": format!("v{v}.0"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") }))
        .collect();
    Json(Value::Array(list))
}

async fn create(
    State(desk): State<Arc<Desk>>,
    Path((version, object)): Path<(String, String)>,
    caller: Option<axum::Extension<desk::User>>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    let fields = match json_object(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let caller = caller.map(|axum::Extension(user)| user);
    match desk.create_as(&object, &fields, caller.as_ref()).await {
        Ok(saved) => (
            StatusCode::CREATED,
            Json(json!({ "id": saved.record.id.as_str(), "success": true, "errors": [] })),
        )
            .into_response(),
        Err(e) => desk_error(e),
    }
}

async fn read(
    State(desk): State<Arc<Desk>>,
    Path((version, object, id)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    match desk.get(&object, &id).await {
        Ok(record) => {
            let object = record.object.clone();
            let mut body = Map::new();
            body.insert(
                "attributes".into(),
                json!({ "type": object, "url": format!("/services/data/{version}/sobjects/{object}/{}", record.id) }),
            );
            // Salesforce returns every field of the object, null where empty.
            if let Some(schema) = desk.catalog().schema(&object) {
                for name in schema.fields.keys() {
                    body.insert(
                        name.clone(),
                        record.get(name).map(|v| v.to_json()).unwrap_or(Value::Null),
                    );
                }
            }
            Json(Value::Object(body)).into_response()
        }
        Err(e) => desk_error(e),
    }
}

async fn update(
    State(desk): State<Arc<Desk>>,
    Path((version, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    let fields = match json_object(&body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match desk.update(&object, &id, &fields).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => desk_error(e),
    }
}

async fn remove(
    State(desk): State<Arc<Desk>>,
    Path((version, object, id)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    match desk.delete(&object, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => desk_error(e),
    }
}

async fn queue_counts(State(desk): State<Arc<Desk>>) -> Response {
    match desk.store().queue_counts().await {
        Ok(counts) => Json(json!(counts)).into_response(),
        Err(e) => desk_error(DeskError::Store(e)),
    }
}

/// The WSDL of an outbound-message action (`casewire wsdl` prints the same bytes).
async fn action_wsdl(State(desk): State<Arc<Desk>>, Path(action): Path<String>) -> Response {
    match crate::cli_wsdl::wsdl_for(desk.catalog(), &action) {
        Some(wsdl) => (
            [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            wsdl,
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: no outbound message named '{action}'"),
            &[],
        ),
    }
}
