//! The inbox: what a team puts in front of its legacy system so that Salesforce (or casewire's desk) can
//! notify it.
//!
//! [`Inbox::receive`] is the request path: parse, authenticate, store every notification once by id in
//! one transaction, and only then let the caller answer the Ack. [`Applier`] runs apart from it and
//! applies stored notifications to the legacy system through an [`Adapter`], per record in version order,
//! retrying failures with backoff and quarantining what can never apply.

mod applier;
pub mod auth;
mod payload;

use std::collections::HashMap;
use std::sync::Arc;

use soap::{FaultCode, Limits, ParseError, ParsedMessage};
use store::{InboxStore, Millis, ReceivedNotification, StoreError};
use tokio::sync::Notify;

pub use applier::{Adapter, Applier, ApplierConfig, ApplyError, Pending, stale_reason};
pub use auth::{BasicCredentials, Caller, RouteAuth, Secret};

/// One listening route: `POST /inbox/{name}`.
#[derive(Clone)]
pub struct Route {
    pub name: String,
    /// Organization ids allowed to send here, as their 15-character form. Empty = any organization.
    pub allowed_org_ids: Vec<String>,
    /// Outbound-message definitions (`04k…`) allowed here, as their 15-character form. Empty = any.
    pub allowed_action_ids: Vec<String>,
    /// The object every notification must be (e.g. `Case`); `None` = any object.
    pub object: Option<String>,
    /// Credentials, client certificate subjects and source networks this route requires.
    pub auth: RouteAuth,
    /// Fields that carry the record's version, tried in order (default SystemModstamp, then
    /// LastModifiedDate). None present = apply in arrival order.
    pub version_fields: Vec<String>,
    /// How the message's ids (organization, action, notifications, records) are checked. `Lenient`
    /// (default) takes 15-character ids and wrong checksums, as real Salesforce data has them;
    /// `Strict` refuses anything but 18 characters with the right checksum.
    pub ids: model::IdValidation,
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
    /// Missing or wrong HTTP credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// A well-formed message that this route does not take (another object).
    #[error("{0}")]
    Refused(String),
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
            InboxError::Unauthorized(_) => 401,
            InboxError::Store(_) => 503,
            // SOAP 1.1 sends faults with 500.
            InboxError::Parse(_) | InboxError::Refused(_) => 500,
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
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Per route, registered once: a labelled `counter!` per request would allocate its key each time.
    received: HashMap<String, metrics::Counter>,
}

impl Inbox {
    pub fn new(
        store: Arc<dyn InboxStore>,
        routes: Vec<Route>,
        limits: Limits,
        signal: Arc<Notify>,
    ) -> Self {
        let received = routes
            .iter()
            .map(|r| {
                let counter = metrics::counter!("casewire_inbox_notifications_received_total", "route" => r.name.clone());
                (r.name.clone(), counter)
            })
            .collect();
        Self {
            store,
            routes: routes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            limits,
            signal,
            trusted_proxies: Vec::new(),
            received,
        }
    }

    /// Proxies whose `X-Forwarded-For` is believed (off by default: the TCP peer is the source).
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The transport-level checks of a route (source address, client certificate, credentials),
    /// before its body is read. [`Inbox::receive`] checks them again, with the message's.
    pub fn authenticate(&self, route_name: &str, caller: &Caller) -> Result<(), InboxError> {
        let route = self
            .routes
            .get(route_name)
            .ok_or_else(|| InboxError::UnknownRoute(route_name.to_owned()))?;
        auth::authenticate(&route.name, &route.auth, caller, &self.trusted_proxies)
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
        caller: &Caller,
        body: &[u8],
        now: Millis,
    ) -> Result<Receipt, InboxError> {
        self.authenticate(route_name, caller)?;
        let route = self
            .routes
            .get(route_name)
            .ok_or_else(|| InboxError::UnknownRoute(route_name.to_owned()))?;
        let message = soap::parse_notifications(body, &self.limits)
            .map_err(|e| auth::refuse(&route.name, "invalid_message", InboxError::Parse(e)))?;
        authorize(route, &message)?;
        check_ids(route, &message)?;
        let count = message.notifications.len();
        let batch = to_received(route, message, now);
        let newly_stored = self.store.store_received(batch).await?;
        if newly_stored > 0 {
            self.signal.notify_one();
        }
        if let Some(counter) = self.received.get(&route.name) {
            counter.increment(count as u64);
        }
        Ok(Receipt {
            notifications: count,
            newly_stored,
        })
    }
}

/// The checks that need the message: organization id, action id, object. Salesforce admins paste 15- or
/// 18-character ids; the first 15 characters identify one (case-sensitively). Compared in constant time
/// so that response timing does not reveal a prefix.
fn authorize(route: &Route, message: &ParsedMessage) -> Result<(), InboxError> {
    if message.notifications.is_empty() {
        // Nothing will be stored, and such a message may carry no ids at all: acked as a no-op.
        return Ok(());
    }
    if !route.allowed_org_ids.is_empty() {
        let org = message.organization_id.as_deref().unwrap_or("");
        if !id_allowed(org, &route.allowed_org_ids) {
            return Err(auth::refuse(
                &route.name,
                "organization",
                InboxError::Forbidden(format!(
                    "organization {org} is not allowed on route {}",
                    route.name
                )),
            ));
        }
    }
    if !route.allowed_action_ids.is_empty() {
        let action = message.action_id.as_deref().unwrap_or("");
        if !id_allowed(action, &route.allowed_action_ids) {
            return Err(auth::refuse(
                &route.name,
                "action",
                InboxError::Forbidden(format!(
                    "action {action:?} is not allowed on route {}",
                    route.name
                )),
            ));
        }
    }
    if let Some(object) = &route.object {
        let other = message
            .notifications
            .iter()
            .enumerate()
            .find(|(_, n)| n.object_type != *object);
        if let Some((i, n)) = other {
            return Err(auth::refuse(
                &route.name,
                "object",
                InboxError::Refused(format!(
                    "Notification {} carries a {} but route {} takes {object} only",
                    i + 1,
                    n.object_type,
                    route.name
                )),
            ));
        }
    }
    Ok(())
}

/// Every id the message carries must be a Salesforce id: 15 or 18 letters and digits (a listener keys
/// and compares by them; anything else is not from Salesforce). Strict routes also want 18 characters
/// with the right checksum. The fault names the first id that fails.
fn check_ids(route: &Route, message: &ParsedMessage) -> Result<(), InboxError> {
    let strict = route.ids == model::IdValidation::Strict;
    let refuse = |what: String, e: model::IdError| {
        let why = if strict {
            format!(" (route {} checks ids strictly)", route.name)
        } else {
            String::new()
        };
        auth::refuse(
            &route.name,
            "invalid_id",
            InboxError::Refused(format!("{what}: {e}{why}")),
        )
    };
    if message.notifications.is_empty() {
        return Ok(());
    }
    let header = [
        ("OrganizationId", &message.organization_id),
        ("ActionId", &message.action_id),
    ];
    for (name, value) in header {
        if let Some(id) = value {
            route
                .ids
                .parse(id)
                .map_err(|e| refuse(name.to_owned(), e))?;
        }
    }
    for (i, n) in message.notifications.iter().enumerate() {
        route
            .ids
            .parse(&n.id)
            .map_err(|e| refuse(format!("Notification {} Id", i + 1), e))?;
        if let Some((_, Some(record))) = n.fields.iter().find(|(name, _)| name == "Id") {
            route
                .ids
                .parse(record)
                .map_err(|e| refuse(format!("Notification {} sObject Id", i + 1), e))?;
        }
    }
    Ok(())
}

fn id_allowed(presented: &str, allowed15: &[String]) -> bool {
    let presented = presented
        .as_bytes()
        .get(..15)
        .unwrap_or(presented.as_bytes());
    let mut allowed = false;
    for candidate in allowed15 {
        allowed |= auth::constant_time_eq(presented, candidate.as_bytes());
    }
    allowed
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
            // `(name, value)` pairs serialize straight to the stored `[[name, value-or-null], ...]`
            // form, without building a JSON tree per field.
            let fields = serde_json::to_string(&n.fields).unwrap_or_else(|_| "[]".to_owned());
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

/// Normalizes a configured organization or action id (15 or 18 characters) to the 15 characters
/// compared.
pub fn org_id_for_allowlist(configured: &str) -> Result<String, model::IdError> {
    let id = model::SfId::parse(configured.trim())?;
    Ok(id.id15().to_owned())
}
