//! The inbox: what a team puts in front of its legacy system so that Salesforce (or casewire's desk) can
//! notify it.
//!
//! [`Inbox::receive`] is the request path: parse, authenticate, store every notification once by id in
//! one transaction, and only then let the caller answer the Ack. [`Applier`] runs apart from it and
//! applies stored notifications to the legacy system through an [`Adapter`], per record in version order,
//! retrying failures with backoff and quarantining what can never apply.

mod applier;

use std::collections::HashMap;
use std::sync::Arc;

use soap::{FaultCode, Limits, ParseError, ParsedMessage};
use store::{InboxStore, Millis, ReceivedNotification, StoreError};
use tokio::sync::Notify;

pub use applier::{Adapter, Applier, ApplierConfig, ApplyError, Pending};

/// One listening route: `POST /inbox/{name}`.
#[derive(Clone)]
pub struct Route {
    pub name: String,
    /// Organization ids allowed to send here, as their 15-character form. Empty = any organization.
    pub allowed_org_ids: Vec<String>,
    /// Fields that carry the record's version, tried in order (default SystemModstamp, then
    /// LastModifiedDate). None present = apply in arrival order.
    pub version_fields: Vec<String>,
    pub adapter: Arc<dyn Adapter>,
}

impl Route {
    pub fn default_version_fields() -> Vec<String> {
        vec!["SystemModstamp".to_owned(), "LastModifiedDate".to_owned()]
    }
}

/// Why a request was refused; each maps to a SOAP fault.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("no inbox route named {0:?}")]
    UnknownRoute(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Forbidden(String),
    #[error("the message could not be stored, try again later: {0}")]
    Store(#[from] StoreError),
}

impl InboxError {
    pub fn fault_code(&self) -> FaultCode {
        match self {
            InboxError::Parse(e) => e.fault_code(),
            InboxError::Store(_) => FaultCode::Server,
            _ => FaultCode::Client,
        }
    }

    /// The HTTP status the fault is sent with.
    pub fn http_status(&self) -> u16 {
        match self {
            InboxError::UnknownRoute(_) => 404,
            InboxError::Forbidden(_) => 403,
            InboxError::Store(_) => 503,
            // SOAP 1.1 sends faults with 500.
            InboxError::Parse(_) => 500,
        }
    }
}

/// What a stored message held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub notifications: usize,
    pub newly_stored: usize,
}

pub struct Inbox {
    store: Arc<dyn InboxStore>,
    routes: HashMap<String, Route>,
    limits: Limits,
    signal: Arc<Notify>,
}

impl Inbox {
    pub fn new(
        store: Arc<dyn InboxStore>,
        routes: Vec<Route>,
        limits: Limits,
        signal: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            routes: routes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            limits,
            signal,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// Parses, authenticates and durably stores a message. `Ok` means every notification in it is
    /// committed (now or by an earlier delivery) and the sender may be acked.
    pub async fn receive(
        &self,
        route_name: &str,
        body: &[u8],
        now: Millis,
    ) -> Result<Receipt, InboxError> {
        let route = self
            .routes
            .get(route_name)
            .ok_or_else(|| InboxError::UnknownRoute(route_name.to_owned()))?;
        let message = soap::parse_notifications(body, &self.limits)?;
        authorize(route, &message)?;
        let count = message.notifications.len();
        let batch = to_received(route, message, now);
        let newly_stored = self.store.store_received(batch).await?;
        if newly_stored > 0 {
            self.signal.notify_one();
        }
        metrics::counter!("casewire_inbox_notifications_received_total", "route" => route.name.clone())
            .increment(count as u64);
        Ok(Receipt {
            notifications: count,
            newly_stored,
        })
    }
}

/// Salesforce admins paste 15- or 18-character organization ids; the first 15 characters identify it
/// (case-sensitively). Compared in constant time so that response timing does not reveal a prefix.
fn authorize(route: &Route, message: &ParsedMessage) -> Result<(), InboxError> {
    if route.allowed_org_ids.is_empty() {
        return Ok(());
    }
    let Some(org) = message.organization_id.as_deref() else {
        // Only a message without notifications parses without an organization id: nothing to store.
        return Ok(());
    };
    let presented = org.as_bytes().get(..15).unwrap_or(org.as_bytes());
    let mut allowed = false;
    for candidate in &route.allowed_org_ids {
        allowed |= constant_time_eq(presented, candidate.as_bytes());
    }
    if allowed {
        Ok(())
    } else {
        metrics::counter!("casewire_inbox_refused_total", "route" => route.name.clone(), "why" => "organization")
            .increment(1);
        Err(InboxError::Forbidden(format!(
            "organization {org} is not allowed on route {}",
            route.name
        )))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn to_received(route: &Route, message: ParsedMessage, now: Millis) -> Vec<ReceivedNotification> {
    let organization_id = message.organization_id.unwrap_or_default();
    let action_id = message.action_id.unwrap_or_default();
    message
        .notifications
        .into_iter()
        .map(|n| {
            let record_id = field(&n.fields, "Id").map(str::to_owned);
            let version = route
                .version_fields
                .iter()
                .find_map(|f| field(&n.fields, f))
                .and_then(model::value::parse_datetime)
                .map(|t| t.timestamp_millis());
            let fields = serde_json::Value::Array(
                n.fields
                    .iter()
                    .map(|(name, value)| serde_json::json!([name, value]))
                    .collect(),
            )
            .to_string();
            ReceivedNotification {
                id: n.id,
                route: route.name.clone(),
                organization_id: organization_id.clone(),
                action_id: action_id.clone(),
                object_type: n.object_type,
                record_id,
                version,
                fields,
                received: now,
            }
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// Normalizes a configured organization id (15 or 18 characters) to the 15 characters compared.
pub fn org_id_for_allowlist(configured: &str) -> Result<String, model::IdError> {
    let id = model::SfId::parse(configured.trim())?;
    Ok(id.id15().to_owned())
}
