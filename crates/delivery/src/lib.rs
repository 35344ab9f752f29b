//! The delivery engine.
//!
//! One dispatcher loop reads, per action, how many notifications are due ([`store::DueAction`]), and
//! for each endpoint with a free slot claims up to a message's worth (a lease keeps the claim safe if
//! this process dies) and hands the batch to a task that builds the SOAP message, sends it, classifies
//! the answer and records the attempt together with each notification's fate. Endpoints are isolated by
//! their own in-flight limits: a slow endpoint holds only its own slots, and actions are served longest
//! waiting first.
//!
//! # Batching
//!
//! A message carries up to `max_batch` (100) notifications of one action. While an endpoint's slots are
//! busy, new notifications accumulate and leave together as soon as a slot frees, so a busy endpoint
//! gets full messages without any timer. `batch_window` (default 200 ms) is how long a partial batch may
//! wait for company when the endpoint has a free slot but another message to it is still in flight
//! (only possible with `per_endpoint` > 1): a burst then fills messages instead of spreading over many
//! small parallel ones. An idle endpoint is never kept waiting, so close-to-ack latency stays one round
//! trip; `batch_when_idle` makes every partial batch wait the window, closer to Salesforce's own
//! (undocumented, seconds-long) batching. A full batch never waits. See [`settings::readiness`].

pub mod admin;
pub mod endpoint;
pub mod retry;
mod send;
pub mod session;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use desk::Catalog;
use store::{DeskStore, Millis};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use endpoint::{EndpointError, check_endpoint_url};
pub use retry::RetryPolicy;
pub use send::{AttemptAnswer, Transport, TransportError};
pub use settings::{ActionOverrides, ActionSettings, Readiness, TlsOptions, readiness};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    /// A claim's lease; past it, another worker (or this one after a restart) may send again.
    pub lease: Duration,
    /// Whole attempt: connect, send and answer (Salesforce: 60 s).
    pub attempt_timeout: Duration,
    /// Notifications per SOAP message (Salesforce: at most 100).
    pub max_batch: usize,
    /// Messages in flight per endpoint at once.
    pub per_endpoint: usize,
    /// How long a partial batch may wait for company while its endpoint has another message in flight
    /// (or always, with `batch_when_idle`), counted from its oldest notification becoming due.
    pub batch_window: Duration,
    /// Apply `batch_window` to idle endpoints too (more batching, one window more latency).
    pub batch_when_idle: bool,
    /// Longest sleep between looks at the queue when nothing signals (changes made by other processes).
    pub idle_poll: Duration,
    /// Longest wait for in-flight messages at shutdown before their claims are released.
    pub shutdown_grace: Duration,
    pub user_agent: String,
    /// Refuse to connect to host names that resolve only to private, loopback or link-local addresses.
    pub deny_private: bool,
    /// Per-action overrides, by action name.
    pub actions: HashMap<String, ActionOverrides>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(60),
            max_batch: 100,
            per_endpoint: 1,
            batch_window: Duration::from_millis(200),
            batch_when_idle: false,
            idle_poll: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            user_agent: concat!("casewire/", env!("CARGO_PKG_VERSION")).to_owned(),
            deny_private: false,
            actions: HashMap::new(),
        }
    }
}

pub struct Engine {
    store: Arc<dyn DeskStore>,
    catalog: Arc<Catalog>,
    config: EngineConfig,
    /// Resolved once per configured action.
    settings: HashMap<String, ActionSettings>,
    signal: Arc<Notify>,
    transport: Transport,
    sessions: session::Sessions,
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The dispatcher's bookkeeping: messages in flight per endpoint URL and the claims each task holds
/// (released at shutdown if the task has not finished).
#[derive(Default)]
struct InFlight {
    per_endpoint: HashMap<String, usize>,
    tasks: JoinSet<()>,
    claims: HashMap<tokio::task::Id, Vec<String>>,
}

impl InFlight {
    fn busy(&self, endpoint: &str) -> usize {
        self.per_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    fn release_slot(&mut self, endpoint: &str) {
        if let Some(n) = self.per_endpoint.get_mut(endpoint) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_endpoint.remove(endpoint);
            }
        }
    }

    fn reap(&mut self) {
        while let Some(finished) = self.tasks.try_join_next_with_id() {
            let id = match finished {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            self.claims.remove(&id);
        }
    }
}

impl Engine {
    pub fn new(
        store: Arc<dyn DeskStore>,
        catalog: Arc<Catalog>,
        config: EngineConfig,
        signal: Arc<Notify>,
    ) -> Result<Self, TransportError> {
        let transport = Transport::new(&config, &catalog)?;
        let settings = catalog
            .actions()
            .map(|a| (a.name.clone(), config.settings_for(&a.name)))
            .collect();
        Ok(Self {
            store,
            catalog,
            config,
            settings,
            signal,
            transport,
            sessions: session::Sessions::default(),
        })
    }

    /// The settings `action`'s messages are sent with.
    pub fn settings(&self, action: &str) -> ActionSettings {
        self.settings
            .get(action)
            .cloned()
            .unwrap_or_else(|| self.config.settings_for(action))
    }

    /// Delivers until `shutdown` is cancelled, then stops claiming, waits up to `shutdown_grace` for
    /// messages in flight and releases the claims of those still unanswered.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut flight = InFlight::default();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        while !shutdown.is_cancelled() {
            let wait = match self.dispatch(&mut flight, &done_tx).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!("delivery: cannot read the queue: {e}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(endpoint) = done_rx.recv() => {
                    flight.release_slot(&endpoint);
                    while let Ok(endpoint) = done_rx.try_recv() {
                        flight.release_slot(&endpoint);
                    }
                }
                _ = self.signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            flight.reap();
        }
        self.drain(flight).await;
    }

    async fn drain(&self, mut flight: InFlight) {
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        while !flight.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, flight.tasks.join_next_with_id()).await {
                Ok(Some(Ok((id, ())))) => {
                    flight.claims.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    flight.claims.remove(&e.id());
                }
                Ok(None) => break,
                Err(_) => {
                    flight.tasks.abort_all();
                    while flight.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let unanswered: Vec<String> = flight.claims.into_values().flatten().collect();
        if !unanswered.is_empty() {
            tracing::info!(
                count = unanswered.len(),
                "delivery: releasing unanswered claims at shutdown"
            );
            if let Err(e) = self.store.release(&unanswered).await {
                tracing::warn!(
                    "delivery: could not release claims ({e}); they will be resent after the lease"
                );
            }
        }
    }

    /// Starts a message for every action with due notifications whose endpoint has a free slot and
    /// whose batch is ready. Returns how long the loop may sleep if nothing signals: until the next
    /// retry, lease end or batch window, at most `idle_poll`. A full endpoint needs no timer: the end of
    /// one of its messages wakes the loop.
    async fn dispatch(
        self: &Arc<Self>,
        flight: &mut InFlight,
        done: &mpsc::UnboundedSender<String>,
    ) -> Result<Duration, store::StoreError> {
        let now = now_ms();
        let mut summary = self.store.due_summary(now).await?;
        // Longest waiting first, so that no action (and no endpoint) is starved by busier ones.
        summary.sort_by_key(|d| d.oldest_due.unwrap_or(Millis::MAX));
        let mut wake: Option<Millis> = None;
        let mut wake_at = |t: Millis| wake = Some(wake.map_or(t, |w| w.min(t)));
        for due in summary {
            let Some(action) = self.catalog.action(&due.action) else {
                // Queued by an earlier configuration; it stays visible in the queue for an operator.
                continue;
            };
            if let Some(next) = due.next_at {
                wake_at(next);
            }
            let Some(oldest) = due.oldest_due else {
                continue;
            };
            let settings = self.settings(&action.name);
            let endpoint = &action.endpoint_url;
            let mut remaining = due.due;
            while remaining > 0 {
                let busy = flight.busy(endpoint);
                if busy >= settings.per_endpoint {
                    break;
                }
                if let Readiness::WaitUntil(at) = readiness(remaining, oldest, now, busy, &settings)
                {
                    wake_at(at);
                    break;
                }
                let lease_until = now + self.config.lease.as_millis() as i64;
                let claimed = self
                    .store
                    .claim(&action.name, now, lease_until, settings.max_batch)
                    .await?;
                if claimed.is_empty() {
                    // Another process claimed them first.
                    break;
                }
                remaining = remaining.saturating_sub(claimed.len() as u64);
                *flight.per_endpoint.entry(endpoint.clone()).or_insert(0) += 1;
                let ids: Vec<String> = claimed.iter().map(|n| n.id.clone()).collect();
                let engine = Arc::clone(self);
                let done = done.clone();
                let action = action.clone();
                let endpoint = endpoint.clone();
                let handle = flight.tasks.spawn(async move {
                    engine.send_batch(&action, claimed).await;
                    let _ = done.send(endpoint);
                });
                flight.claims.insert(handle.id(), ids);
            }
        }
        let wait = match wake {
            Some(at) => Duration::from_millis((at - now).max(1) as u64),
            None => self.config.idle_poll,
        };
        Ok(wait.min(self.config.idle_poll))
    }
}
