//! One attempt: build the message from claimed notifications, POST it, classify the answer, record it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use desk::Catalog;
use model::{FieldValue, OutboundAction, PayloadMode, Record, SfId};
use soap::{OutboundMessage, OutgoingNotification, Verdict};
use store::{AfterAttempt, AttemptRecord, QueuedNotification};

use crate::endpoint::PublicOnlyResolver;
use crate::{Engine, EngineConfig, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("action {action}: {what}: {reason}")]
    Tls {
        action: String,
        what: &'static str,
        reason: String,
    },
}

/// The HTTP side of delivery. One client for every action with default TLS settings, and one more per
/// action with its own CA or client certificate; each keeps a pool of keep-alive connections per host,
/// so consecutive messages to an endpoint reuse one connection. rustls with the platform's roots (plus
/// an action's extra roots), hostname verification and SNI always, TLS 1.2 at least, no redirects.
pub struct Transport {
    shared: reqwest::Client,
    own: HashMap<String, reqwest::Client>,
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptAnswer {
    /// The HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    pub verdict: Verdict,
}

impl Transport {
    pub fn new(config: &EngineConfig, catalog: &Catalog) -> Result<Self, TransportError> {
        // reqwest is built without a default crypto provider so that ring (no C toolchain beyond cc)
        // is the one in use; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = base_builder(config)
            .build()
            .map_err(|e| TransportError::Client(describe_chain(&e)))?;
        let mut own = HashMap::new();
        for action in catalog.actions() {
            let Some(tls) = config
                .actions
                .get(&action.name)
                .map(|o| &o.tls)
                .filter(|t| !t.is_default())
            else {
                continue;
            };
            let tls_error = |what: &'static str, reason: String| TransportError::Tls {
                action: action.name.clone(),
                what,
                reason,
            };
            let mut builder = base_builder(config);
            if let Some(pem) = &tls.extra_roots_pem {
                let roots = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| tls_error("ca_file", describe_chain(&e)))?;
                if roots.is_empty() {
                    return Err(tls_error("ca_file", "holds no PEM certificate".into()));
                }
                // Added to the platform's roots, never replacing them.
                builder = builder.tls_certs_merge(roots);
            }
            if let Some(pem) = &tls.client_identity_pem {
                let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                    tls_error("client_certificate / client_key", describe_chain(&e))
                })?;
                builder = builder.identity(identity);
            }
            let client = builder
                .build()
                .map_err(|e| tls_error("TLS settings", describe_chain(&e)))?;
            own.insert(action.name.clone(), client);
        }
        Ok(Self { shared, own })
    }

    fn client(&self, action: &str) -> &reqwest::Client {
        self.own.get(action).unwrap_or(&self.shared)
    }

    /// POSTs one SOAP message for `action` to `endpoint` and classifies the answer. `timeout` bounds the
    /// whole attempt: connecting, sending and reading the answer.
    pub async fn attempt(
        &self,
        action: &str,
        endpoint: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> AttemptAnswer {
        let request = self
            .client(action)
            .post(endpoint)
            .timeout(timeout)
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return AttemptAnswer {
                    http_status: None,
                    verdict: Verdict::Failed(describe_transport_error(&e, timeout)),
                };
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let target = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no Location header)")
                .to_owned();
            return AttemptAnswer {
                http_status: Some(status.as_u16()),
                verdict: Verdict::Failed(format!(
                    "HTTP {status}: redirect to {target} not followed"
                )),
            };
        }
        match response.bytes().await {
            Ok(bytes) => AttemptAnswer {
                http_status: Some(status.as_u16()),
                verdict: soap::classify_answer(status.as_u16(), &bytes),
            },
            Err(e) => AttemptAnswer {
                http_status: Some(status.as_u16()),
                verdict: Verdict::Failed(format!(
                    "HTTP {status}: answer body unreadable: {}",
                    describe_transport_error(&e, timeout)
                )),
            },
        }
    }
}

fn base_builder(config: &EngineConfig) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(config.user_agent.clone())
        .pool_idle_timeout(Duration::from_secs(90))
        // Probes idle pooled connections so that a peer that vanished is noticed before reuse.
        .tcp_keepalive(Duration::from_secs(60))
        .tls_version_min(reqwest::tls::Version::TLS_1_2)
        .tls_sni(true);
    if config.deny_private {
        builder.dns_resolver(Arc::new(PublicOnlyResolver))
    } else {
        builder
    }
}

impl Engine {
    pub(crate) async fn send_batch(
        &self,
        action: &OutboundAction,
        claimed: Vec<QueuedNotification>,
    ) {
        let settings = self.settings(&action.name);
        let started_ms = now_ms();
        let started = Instant::now();
        let answer = match self.build_message(action, &claimed).await {
            Ok(body) => {
                self.transport
                    .attempt(
                        &action.name,
                        &action.endpoint_url,
                        body,
                        settings.attempt_timeout,
                    )
                    .await
            }
            Err(reason) => AttemptAnswer {
                http_status: None,
                verdict: Verdict::Failed(reason),
            },
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let finished_at = started_ms + duration_ms;
        let delivered = matches!(answer.verdict, Verdict::Delivered);
        let reason = match &answer.verdict {
            Verdict::Delivered => None,
            Verdict::Failed(reason) => Some(reason.clone()),
        };
        let outcomes: Vec<(String, AfterAttempt)> = claimed
            .iter()
            .map(|n| {
                let after = if delivered {
                    AfterAttempt::Delivered
                } else {
                    let sample = rand::random_range(-1.0..=1.0);
                    settings.retry.after_failure(
                        n.attempts + 1,
                        n.created,
                        finished_at,
                        sample,
                        action.use_dead_letter_queue,
                    )
                };
                (n.id.clone(), after)
            })
            .collect();
        let attempt = AttemptRecord {
            action: action.name.clone(),
            endpoint: action.endpoint_url.clone(),
            started: started_ms,
            duration_ms,
            http_status: answer.http_status,
            delivered,
            reason: reason.clone(),
            notification_ids: claimed.iter().map(|n| n.id.clone()).collect(),
        };
        metrics::counter!("casewire_delivery_attempts_total", "outcome" => if delivered { "delivered" } else { "failed" })
            .increment(1);
        if delivered {
            metrics::counter!("casewire_notifications_delivered_total")
                .increment(claimed.len() as u64);
            tracing::debug!(action = %action.name, count = claimed.len(), duration_ms, "delivered");
        } else {
            tracing::info!(action = %action.name, endpoint = %action.endpoint_url, count = claimed.len(),
                reason = reason.as_deref().unwrap_or(""), "delivery attempt failed");
        }
        // If this write fails the lease runs out and the batch is sent again: at least once.
        if let Err(e) = self.store.finish_attempt(attempt, outcomes).await {
            tracing::warn!(action = %action.name, "cannot record a delivery attempt: {e}");
        }
    }

    /// The SOAP body for these notifications. In `latest` mode the records are read now (a deleted
    /// record sends no fields); in `snapshot` mode each carries the record as it was at its change.
    async fn build_message(
        &self,
        action: &OutboundAction,
        claimed: &[QueuedNotification],
    ) -> Result<Vec<u8>, String> {
        let schema = self
            .catalog
            .schema(&action.object)
            .ok_or_else(|| format!("object {} is not configured", action.object))?;
        let records: Vec<Option<Record>> = match action.payload_mode {
            PayloadMode::Latest => {
                let ids: Vec<String> = claimed.iter().map(|n| n.record_id.clone()).collect();
                let rows = self
                    .store
                    .get_records(&ids)
                    .await
                    .map_err(|e| format!("cannot read the records to send: {e}"))?;
                let by_id: HashMap<&str, &store::RecordRow> =
                    rows.iter().map(|r| (r.id.as_str(), r)).collect();
                claimed
                    .iter()
                    .map(|n| {
                        by_id
                            .get(n.record_id.as_str())
                            .filter(|row| !row.deleted)
                            .and_then(|row| self.catalog.decode_record(row))
                    })
                    .collect()
            }
            PayloadMode::Snapshot => claimed
                .iter()
                .map(|n| {
                    let json: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&n.snapshot).ok()?;
                    let id = SfId::parse(&n.record_id).ok()?;
                    Some(desk::decode_record_json(schema, id, &json))
                })
                .collect(),
        };
        let wire_fields = action.wire_fields();
        let selected: Vec<Option<Vec<(&str, &FieldValue)>>> = records
            .iter()
            .map(|record| {
                record.as_ref().map(|r| {
                    wire_fields
                        .iter()
                        .filter_map(|name| r.get(name).map(|v| (*name, v)))
                        .collect()
                })
            })
            .collect();
        let notifications: Vec<OutgoingNotification<'_>> = claimed
            .iter()
            .zip(&selected)
            .map(|(n, fields)| OutgoingNotification {
                id: &n.id,
                object_type: &action.object,
                fields: fields.as_deref(),
            })
            .collect();
        let session = match (&action.include_session_id, &action.integration_user) {
            (false, _) => None,
            (true, Some(user)) => Some(
                self.sessions
                    .session_for(self.store.as_ref(), &self.catalog, user, chrono::Utc::now())
                    .await?,
            ),
            (true, None) => {
                return Err(format!(
                    "action {} sends a session id but names no integration user",
                    action.name
                ));
            }
        };
        let enterprise_url = self.catalog.enterprise_url(action);
        let partner_url = self.catalog.partner_url(action);
        let message = OutboundMessage {
            organization_id: self.catalog.org.id.as_str(),
            action_id: action.id.as_str(),
            session_id: session.as_deref(),
            enterprise_url: &enterprise_url,
            partner_url: &partner_url,
            notifications: &notifications,
        };
        let mut body = Vec::with_capacity(1024 + 512 * claimed.len());
        soap::encode_notifications(&message, &mut body);
        Ok(body)
    }
}

/// A specific reason for a failed request: its kind, then the innermost cause's text (for TLS, the
/// rustls error, which names what was wrong with the certificate).
fn describe_transport_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout: no complete answer within {timeout:?}");
    }
    let mut causes: Vec<String> = Vec::new();
    let mut tls: Option<String> = None;
    let mut refused = false;
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<rustls::Error>() {
            tls = Some(r.to_string());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    let innermost = causes.last().cloned().unwrap_or_else(|| e.to_string());
    if let Some(text) = tls {
        return format!("TLS error: {text}");
    }
    format!(
        "{}: {innermost}",
        failure_kind(e.is_connect(), refused, &causes)
    )
}

/// The kind of a transport failure from its cause chain's texts (pure, for testing).
fn failure_kind(is_connect: bool, refused: bool, causes: &[String]) -> &'static str {
    let joined = causes.join(": ").to_lowercase();
    if joined.contains("certificate") || joined.contains("tls") || joined.contains("handshake") {
        "TLS error"
    } else if joined.contains("dns error")
        || joined.contains("failed to lookup")
        || joined.contains("name or service")
        || joined.contains("resolves only to non-public")
    {
        "DNS error"
    } else if refused || joined.contains("connection refused") {
        "connection refused"
    } else if joined.contains("connection reset") || joined.contains("connection closed") {
        "connection closed by the endpoint"
    } else if is_connect {
        "connect error"
    } else {
        "request error"
    }
}

/// An error and its causes on one line.
fn describe_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(connect: bool, refused: bool, causes: &[&str]) -> &'static str {
        let causes: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        failure_kind(connect, refused, &causes)
    }

    #[test]
    fn failure_kinds_from_cause_texts() {
        assert_eq!(
            kind(
                true,
                false,
                &[
                    "client error (Connect)",
                    "dns error",
                    "failed to lookup address information: Name or service not known"
                ]
            ),
            "DNS error"
        );
        assert_eq!(
            kind(
                true,
                true,
                &[
                    "client error (Connect)",
                    "tcp connect error",
                    "Connection refused (os error 111)"
                ]
            ),
            "connection refused"
        );
        assert_eq!(
            kind(
                true,
                false,
                &[
                    "client error (Connect)",
                    "invalid peer certificate: UnknownIssuer"
                ]
            ),
            "TLS error"
        );
        assert_eq!(
            kind(
                false,
                false,
                &[
                    "client error (SendRequest)",
                    "connection closed before message completed"
                ]
            ),
            "connection closed by the endpoint"
        );
        assert_eq!(kind(true, false, &["something else"]), "connect error");
        assert_eq!(kind(false, false, &[]), "request error");
    }
}
