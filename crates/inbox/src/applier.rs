//! The applier: takes stored notifications to the legacy system through the route's adapter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use store::{ApplyOutcome, InboxRow, InboxStore, Millis};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A notification ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: String,
    pub organization_id: String,
    pub action_id: String,
    pub object_type: String,
    pub record_id: Option<String>,
    pub version: Option<Millis>,
    /// Fields in document order; `None` = nil. Empty = the record was deleted before delivery.
    pub fields: Vec<(String, Option<String>)>,
}

impl Pending {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ApplyError {
    /// A permanent failure goes to quarantine at once; others are retried.
    pub permanent: bool,
    pub reason: String,
}

impl ApplyError {
    pub fn retry(reason: impl Into<String>) -> Self {
        Self {
            permanent: false,
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }
}

/// Applies notifications to one legacy system.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// Applies `batch` in order (per record, oldest version first) and answers one result per
    /// notification, in the same order. An adapter must make each notification take effect at most
    /// once even if it is given again (after a crash between its apply and the inbox's bookkeeping),
    /// and answer [`ApplyOutcome::Stale`] for a notification older than what it applied already.
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>>;

    /// Whether the adapter itself skips a notification older than the version it applied (the SQL
    /// adapter does, in its ledger). When not, the applier skips it before calling the adapter, from
    /// the versions the inbox recorded as applied for the route.
    fn tracks_versions(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone)]
pub struct ApplierConfig {
    /// Notifications read and applied per round.
    pub batch: usize,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Failed attempts after which a notification is quarantined.
    pub max_attempts: u32,
    pub idle_poll: Duration,
}

impl Default for ApplierConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_attempts: 10,
            idle_poll: Duration::from_secs(5),
        }
    }
}

pub struct Applier {
    store: Arc<dyn InboxStore>,
    adapters: HashMap<String, Arc<dyn Adapter>>,
    config: ApplierConfig,
    signal: Arc<Notify>,
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

impl Applier {
    /// `adapters` maps route names to their adapter.
    pub fn new(
        store: Arc<dyn InboxStore>,
        adapters: HashMap<String, Arc<dyn Adapter>>,
        config: ApplierConfig,
        signal: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            adapters,
            config,
            signal,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let wait = match self.round().await {
                Ok(true) => continue,
                Ok(false) => self.idle_wait().await,
                Err(e) => {
                    tracing::warn!("applier: cannot read the inbox: {e}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn idle_wait(&self) -> Duration {
        let now = now_ms();
        match self.store.next_apply_due().await {
            Ok(Some(at)) if at > now => {
                Duration::from_millis((at - now) as u64).min(self.config.idle_poll)
            }
            _ => self.config.idle_poll,
        }
    }

    /// Applies one batch of due notifications. Returns whether there was anything to do.
    pub async fn round(&self) -> Result<bool, store::StoreError> {
        let rows = self
            .store
            .due_for_apply(now_ms(), self.config.batch)
            .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut by_route: Vec<(String, Vec<InboxRow>)> = Vec::new();
        for row in rows {
            match by_route.iter_mut().find(|(route, _)| *route == row.route) {
                Some((_, rows)) => rows.push(row),
                None => by_route.push((row.route.clone(), vec![row])),
            }
        }
        for (route, rows) in by_route {
            self.apply_route(&route, rows).await?;
        }
        Ok(true)
    }

    async fn apply_route(&self, route: &str, rows: Vec<InboxRow>) -> Result<(), store::StoreError> {
        let now = now_ms();
        let Some(adapter) = self.adapters.get(route) else {
            for row in rows {
                let reason = format!("route {route} has no adapter in the current configuration");
                self.store
                    .record_apply_failure(&row.id, &reason, None, now)
                    .await?;
            }
            return Ok(());
        };
        let mut done: Vec<(String, ApplyOutcome)> = Vec::new();
        let mut to_apply: Vec<(Pending, u32)> = Vec::new();
        // Newest applied version per record, read once per round; rows of a record come oldest first,
        // so notifications of one record within this round never overtake each other.
        let mut newest: HashMap<(String, String), Option<Millis>> = HashMap::new();
        for row in rows {
            let fields = match decode_fields(&row.fields) {
                Ok(fields) => fields,
                Err(reason) => {
                    self.store
                        .record_apply_failure(&row.id, &reason, None, now)
                        .await?;
                    continue;
                }
            };
            if fields.is_empty() {
                done.push((row.id.clone(), ApplyOutcome::Empty));
                continue;
            }
            if let (false, Some(version), Some(record_id)) = (
                adapter.tracks_versions(),
                row.version,
                row.record_id.as_ref(),
            ) {
                let key = (row.object_type.clone(), record_id.clone());
                let applied = match newest.get(&key) {
                    Some(v) => *v,
                    None => {
                        let v = self
                            .store
                            .newest_applied_version(route, &row.object_type, record_id)
                            .await?;
                        newest.insert(key, v);
                        v
                    }
                };
                if let Some(applied) = applied.filter(|a| *a > version) {
                    let reason = stale_reason(version, applied);
                    tracing::info!(notification = %row.id, route, "skipped: {reason}");
                    done.push((row.id.clone(), ApplyOutcome::Stale(reason)));
                    continue;
                }
            }
            to_apply.push((
                Pending {
                    id: row.id,
                    organization_id: row.organization_id,
                    action_id: row.action_id,
                    object_type: row.object_type,
                    record_id: row.record_id,
                    version: row.version,
                    fields,
                },
                row.attempts,
            ));
        }
        if !to_apply.is_empty() {
            let batch: Vec<Pending> = to_apply.iter().map(|(p, _)| p.clone()).collect();
            let results = adapter.apply(&batch).await;
            let finished = now_ms();
            for ((pending, attempts), result) in to_apply.into_iter().zip(results) {
                match result {
                    Ok(outcome) => done.push((pending.id, outcome)),
                    Err(e) => {
                        let failures = attempts + 1;
                        let next = if e.permanent || failures >= self.config.max_attempts {
                            None
                        } else {
                            Some(finished + self.backoff(failures).as_millis() as i64)
                        };
                        tracing::warn!(notification = %pending.id, route, permanent = e.permanent,
                            quarantined = next.is_none(), "apply failed: {}", e.reason);
                        metrics::counter!("casewire_inbox_apply_failures_total", "route" => route.to_owned())
                            .increment(1);
                        self.store
                            .record_apply_failure(&pending.id, &e.reason, next, finished)
                            .await?;
                    }
                }
            }
        }
        if !done.is_empty() {
            metrics::counter!("casewire_inbox_notifications_applied_total", "route" => route.to_owned())
                .increment(done.len() as u64);
            self.store.record_applied(done, now_ms()).await?;
        }
        Ok(())
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let raw = self.config.retry_base.as_secs_f64() * 2f64.powi(exp as i32);
        let spread = 1.0 + 0.1 * rand::random_range(-1.0..=1.0);
        Duration::from_secs_f64(raw.min(self.config.retry_max.as_secs_f64()) * spread)
    }
}

/// Why a notification was skipped: the same words for every adapter.
pub fn stale_reason(version: Millis, applied: Millis) -> String {
    format!(
        "version {} is older than the applied version {}",
        fmt_version(version),
        fmt_version(applied)
    )
}

fn fmt_version(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The stored `[[name, value-or-null], ...]` array. Anything else is a corrupt row, which is quarantined
/// rather than mistaken for an empty (deleted) record.
fn decode_fields(json: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let corrupt = || format!("stored fields are not a [[name, value], ...] array: {json:.200}");
    let items: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|_| corrupt())?;
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::Array(pair) if pair.len() == 2 => {
                let name = pair[0].as_str().ok_or_else(corrupt)?.to_owned();
                Ok((name, pair[1].as_str().map(str::to_owned)))
            }
            _ => Err(corrupt()),
        })
        .collect()
}
