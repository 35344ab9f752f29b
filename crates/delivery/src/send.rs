//! One attempt: build the message from claimed notifications, POST it, classify the answer, record it.

use std::collections::HashMap;
use std::time::Instant;

use desk::Catalog;
use model::{FieldValue, OutboundAction, PayloadMode, Record, SfId};
use soap::{OutboundMessage, OutgoingNotification, Verdict};
use store::{AfterAttempt, AttemptRecord, QueuedNotification};

use crate::{Engine, EngineConfig, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(
        "action {action}: the extra root certificates are not usable PEM certificates: {message}"
    )]
    Roots { action: String, message: String },
}

/// The HTTP side of delivery: one client with a connection pool per endpoint (keep-alive), rustls with
/// the platform's roots, no redirects followed. Actions with extra roots get a client of their own.
pub struct Transport {
    client: reqwest::Client,
    by_action: HashMap<String, reqwest::Client>,
}

impl Transport {
    pub fn new(config: &EngineConfig, _catalog: &Catalog) -> Result<Self, TransportError> {
        // reqwest is built without a default crypto provider so that ring (no C toolchain beyond cc)
        // is the one in use; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(config.attempt_timeout)
                .user_agent(config.user_agent.clone())
                .pool_idle_timeout(std::time::Duration::from_secs(90))
        };
        let client = builder()
            .build()
            .map_err(|e| TransportError::Client(e.to_string()))?;
        let mut by_action = HashMap::new();
        for (action, pem) in &config.action_roots {
            let roots =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| TransportError::Roots {
                    action: action.clone(),
                    message: e.to_string(),
                })?;
            if roots.is_empty() {
                return Err(TransportError::Roots {
                    action: action.clone(),
                    message: "no certificate found".to_owned(),
                });
            }
            let client = builder()
                .tls_certs_merge(roots)
                .build()
                .map_err(|e| TransportError::Client(e.to_string()))?;
            by_action.insert(action.clone(), client);
        }
        Ok(Self { client, by_action })
    }

    fn client_for(&self, action: &str) -> &reqwest::Client {
        self.by_action.get(action).unwrap_or(&self.client)
    }
}

/// What happened to one POST.
struct Answer {
    http_status: Option<u16>,
    verdict: Verdict,
}

impl Engine {
    pub(crate) async fn send_batch(
        &self,
        action: &OutboundAction,
        claimed: Vec<QueuedNotification>,
    ) {
        let started_ms = now_ms();
        let started = Instant::now();
        let answer = match self.build_message(action, &claimed).await {
            Ok(body) => self.post(action, body).await,
            Err(reason) => Answer {
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
                    self.config.retry.after_failure(
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

    async fn post(&self, action: &OutboundAction, body: Vec<u8>) -> Answer {
        let request = self
            .transport
            .client_for(&action.name)
            .post(&action.endpoint_url)
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", "\"\"")
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer {
                    http_status: None,
                    verdict: Verdict::Failed(describe_transport_error(&e)),
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
            return Answer {
                http_status: Some(status.as_u16()),
                verdict: Verdict::Failed(format!(
                    "HTTP {status}: redirect to {target} not followed"
                )),
            };
        }
        match response.bytes().await {
            Ok(bytes) => Answer {
                http_status: Some(status.as_u16()),
                verdict: soap::classify_answer(status.as_u16(), &bytes),
            },
            Err(e) => Answer {
                http_status: Some(status.as_u16()),
                verdict: Verdict::Failed(format!(
                    "HTTP {status}: answer body unreadable: {}",
                    describe_transport_error(&e)
                )),
            },
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

/// A specific reason for a failed request: the kind (timeout, connect, TLS, DNS) and the innermost
/// cause's text.
fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let innermost = causes.last().cloned().unwrap_or_else(|| e.to_string());
    let joined = causes.join(": ").to_lowercase();
    let kind = if e.is_timeout() {
        "timeout"
    } else if joined.contains("certificate")
        || joined.contains("tls")
        || joined.contains("handshake")
    {
        "TLS error"
    } else if joined.contains("dns")
        || joined.contains("failed to lookup")
        || joined.contains("name or service")
    {
        "DNS error"
    } else if joined.contains("connection refused") {
        "connection refused"
    } else if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    format!("{kind}: {innermost}")
}
