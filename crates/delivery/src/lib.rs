//! The delivery engine.
//!
//! One dispatcher loop finds actions with due notifications, claims up to a message's worth for each
//! endpoint that has a free slot (a lease keeps the claim safe if this process dies), and hands each
//! batch to a task that builds the SOAP message, sends it, classifies the answer and records the attempt
//! together with each notification's fate. Endpoints are isolated by their own in-flight limits: a slow
//! endpoint holds only its own slots.
//!
//! Batching needs no timer: while an endpoint's slot is busy, new notifications accumulate and leave
//! together (up to 100) as soon as it frees. An optional linger (`batch_window`) holds a lone
//! notification briefly so that a burst that is just starting can share its message.

pub mod retry;
mod send;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use desk::Catalog;
use store::{DeskStore, Millis};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use retry::RetryPolicy;
pub use send::{Transport, TransportError};

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
    /// How long a message that is not full waits for company after its oldest notification became due.
    pub batch_window: Duration,
    /// Longest sleep between looks at the queue when nothing signals (changes made by other processes).
    pub idle_poll: Duration,
    /// Longest wait for in-flight messages at shutdown before their claims are released.
    pub shutdown_grace: Duration,
    pub user_agent: String,
    /// Extra trusted root certificates (PEM) per action name, for endpoints whose certificate a
    /// private CA issued. The platform's roots stay trusted too.
    pub action_roots: HashMap<String, Vec<u8>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(60),
            max_batch: 100,
            per_endpoint: 1,
            batch_window: Duration::ZERO,
            idle_poll: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            user_agent: concat!("casewire/", env!("CARGO_PKG_VERSION")).to_owned(),
            action_roots: HashMap::new(),
        }
    }
}

pub struct Engine {
    store: Arc<dyn DeskStore>,
    catalog: Arc<Catalog>,
    config: EngineConfig,
    signal: Arc<Notify>,
    transport: Transport,
    sessions: session::Sessions,
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

impl Engine {
    pub fn new(
        store: Arc<dyn DeskStore>,
        catalog: Arc<Catalog>,
        config: EngineConfig,
        signal: Arc<Notify>,
    ) -> Result<Self, TransportError> {
        let transport = Transport::new(&config, &catalog)?;
        Ok(Self {
            store,
            catalog,
            config,
            signal,
            transport,
            sessions: session::Sessions::default(),
        })
    }

    /// Delivers until `shutdown` is cancelled, then stops claiming, waits up to `shutdown_grace` for
    /// messages in flight and releases the claims of those still unanswered.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut claimed_by_task: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        loop {
            let wait = match self
                .dispatch(&mut in_flight, &mut tasks, &mut claimed_by_task, &done_tx)
                .await
            {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!("delivery: cannot read the queue: {e}");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.signal.notified() => {}
                Some(endpoint) = done_rx.recv() => {
                    release_slot(&mut in_flight, &endpoint);
                    while let Ok(endpoint) = done_rx.try_recv() {
                        release_slot(&mut in_flight, &endpoint);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            while let Some(finished) = tasks.try_join_next_with_id() {
                let id = match finished {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                claimed_by_task.remove(&id);
            }
        }
        self.drain(tasks, claimed_by_task).await;
    }

    async fn drain(
        &self,
        mut tasks: JoinSet<()>,
        mut claimed_by_task: HashMap<tokio::task::Id, Vec<String>>,
    ) {
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
                Ok(Some(Ok((id, ())))) => {
                    claimed_by_task.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    claimed_by_task.remove(&e.id());
                }
                Ok(None) => break,
                Err(_) => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let unanswered: Vec<String> = claimed_by_task.into_values().flatten().collect();
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

    /// Starts a send for every action with due notifications whose endpoint has a free slot. Returns
    /// how long the loop may sleep if nothing signals.
    async fn dispatch(
        self: &Arc<Self>,
        in_flight: &mut HashMap<String, usize>,
        tasks: &mut JoinSet<()>,
        claimed_by_task: &mut HashMap<tokio::task::Id, Vec<String>>,
        done: &mpsc::UnboundedSender<String>,
    ) -> Result<Duration, store::StoreError> {
        let now = now_ms();
        let mut blocked = false;
        for action_name in self.store.due_actions(now).await? {
            let Some(action) = self.catalog.action(&action_name) else {
                // Queued by an earlier configuration; it stays visible in the queue for an operator.
                continue;
            };
            let endpoint = action.endpoint_url.clone();
            let busy = in_flight.get(&endpoint).copied().unwrap_or(0);
            if busy >= self.config.per_endpoint {
                blocked = true;
                continue;
            }
            let lease_until = now + self.config.lease.as_millis() as i64;
            let claimed = self
                .store
                .claim(&action_name, now, lease_until, self.config.max_batch)
                .await?;
            if claimed.is_empty() {
                continue;
            }
            if claimed.len() < self.config.max_batch && !self.config.batch_window.is_zero() {
                let oldest = claimed.iter().map(|n| n.next_attempt).min().unwrap_or(now);
                let ready_at = oldest + self.config.batch_window.as_millis() as i64;
                if ready_at > now {
                    let ids: Vec<String> = claimed.iter().map(|n| n.id.clone()).collect();
                    self.store.release(&ids).await?;
                    blocked = true;
                    continue;
                }
            }
            *in_flight.entry(endpoint.clone()).or_insert(0) += 1;
            let ids: Vec<String> = claimed.iter().map(|n| n.id.clone()).collect();
            let engine = Arc::clone(self);
            let done = done.clone();
            let action = action.clone();
            let handle = tasks.spawn(async move {
                engine.send_batch(&action, claimed).await;
                let _ = done.send(endpoint);
            });
            claimed_by_task.insert(handle.id(), ids);
        }
        if blocked {
            // Something is due but waits for a slot or its batch window: look again soon.
            return Ok(self
                .config
                .batch_window
                .clamp(Duration::from_millis(5), Duration::from_millis(250)));
        }
        let wait = match self.store.next_due().await? {
            Some(at) if at > now => Duration::from_millis((at - now) as u64),
            // Due now yet not started: its action is gone from the configuration. Completions and new
            // changes wake the loop anyway.
            Some(_) | None => self.config.idle_poll,
        };
        Ok(wait.min(self.config.idle_poll))
    }
}

fn release_slot(in_flight: &mut HashMap<String, usize>, endpoint: &str) {
    if let Some(n) = in_flight.get_mut(endpoint) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            in_flight.remove(endpoint);
        }
    }
}
