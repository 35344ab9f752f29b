//! Delivery settings per action: the global values of [`EngineConfig`] with an action's own overrides
//! on top, and the batching decision that uses them (pure, time passed in).

use std::fmt;
use std::time::Duration;

use store::Millis;

use crate::{EngineConfig, RetryPolicy};

/// What one action may set differently from the global delivery settings. `None` keeps the global value.
#[derive(Debug, Clone, Default)]
pub struct ActionOverrides {
    pub retry_base: Option<Duration>,
    pub retry_max: Option<Duration>,
    pub jitter: Option<f64>,
    pub expiry: Option<Duration>,
    pub attempt_timeout: Option<Duration>,
    pub per_endpoint: Option<usize>,
    pub max_batch: Option<usize>,
    pub batch_window: Option<Duration>,
    pub tls: TlsOptions,
}

/// TLS material for one action, as PEM text read by the caller (the binary reads files; this crate
/// only parses what it is given).
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted root certificates, added to the platform's roots (never replacing them).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// The client certificate chain followed by its private key, for endpoints that ask for one.
    pub client_identity_pem: Option<Vec<u8>>,
}

impl TlsOptions {
    pub fn is_default(&self) -> bool {
        self.extra_roots_pem.is_none() && self.client_identity_pem.is_none()
    }
}

// The identity holds a private key: never print it.
impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "extra_roots_pem",
                &self.extra_roots_pem.as_ref().map(|p| p.len()),
            )
            .field(
                "client_identity_pem",
                &self.client_identity_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The settings one action's messages are sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSettings {
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    /// Messages of this action that may be in flight to its endpoint at once (counting other actions'
    /// messages to the same endpoint URL).
    pub per_endpoint: usize,
    pub max_batch: usize,
    pub batch_window: Duration,
    pub batch_when_idle: bool,
}

impl EngineConfig {
    /// The global settings with `action`'s overrides applied.
    pub fn settings_for(&self, action: &str) -> ActionSettings {
        let o = self.actions.get(action);
        let pick = |f: fn(&ActionOverrides) -> Option<Duration>, global: Duration| {
            o.and_then(f).unwrap_or(global)
        };
        ActionSettings {
            retry: RetryPolicy {
                base: pick(|o| o.retry_base, self.retry.base),
                max: pick(|o| o.retry_max, self.retry.max),
                jitter: o.and_then(|o| o.jitter).unwrap_or(self.retry.jitter),
                expiry: pick(|o| o.expiry, self.retry.expiry),
            },
            attempt_timeout: pick(|o| o.attempt_timeout, self.attempt_timeout),
            per_endpoint: o
                .and_then(|o| o.per_endpoint)
                .unwrap_or(self.per_endpoint)
                .max(1),
            max_batch: o
                .and_then(|o| o.max_batch)
                .unwrap_or(self.max_batch)
                .clamp(1, 100),
            batch_window: pick(|o| o.batch_window, self.batch_window),
            batch_when_idle: self.batch_when_idle,
        }
    }
}

/// Whether an action's due notifications should leave now or wait for company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    SendNow,
    /// Wait for more notifications until this time (then send whatever is due).
    WaitUntil(Millis),
}

/// The batching rule. A full message always leaves at once. A partial one waits up to the batch window
/// (counted from its oldest notification becoming due) only while another message to the same endpoint
/// is in flight, so that a burst fills messages rather than spreading over many small parallel ones;
/// an idle endpoint gets a notification at once (close-to-ack latency stays one round trip) unless
/// `batch_when_idle` asks for Salesforce-like lingering. While every slot is busy nothing leaves anyway:
/// notifications accumulate and the next free slot takes them together.
pub fn readiness(
    due: u64,
    oldest_due: Millis,
    now: Millis,
    in_flight: usize,
    settings: &ActionSettings,
) -> Readiness {
    if due >= settings.max_batch as u64 || settings.batch_window.is_zero() {
        return Readiness::SendNow;
    }
    if in_flight == 0 && !settings.batch_when_idle {
        return Readiness::SendNow;
    }
    let ready_at = oldest_due.saturating_add(settings.batch_window.as_millis() as i64);
    if now >= ready_at {
        Readiness::SendNow
    } else {
        Readiness::WaitUntil(ready_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(window_ms: u64, when_idle: bool) -> ActionSettings {
        ActionSettings {
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(60),
            per_endpoint: 2,
            max_batch: 100,
            batch_window: Duration::from_millis(window_ms),
            batch_when_idle: when_idle,
        }
    }

    #[test]
    fn an_idle_endpoint_gets_a_lone_notification_at_once() {
        assert_eq!(
            readiness(1, 1_000, 1_000, 0, &settings(200, false)),
            Readiness::SendNow
        );
    }

    #[test]
    fn a_partial_batch_waits_while_the_endpoint_is_busy() {
        let s = settings(200, false);
        assert_eq!(
            readiness(3, 1_000, 1_050, 1, &s),
            Readiness::WaitUntil(1_200)
        );
        assert_eq!(readiness(3, 1_000, 1_200, 1, &s), Readiness::SendNow);
    }

    #[test]
    fn a_full_batch_never_waits() {
        assert_eq!(
            readiness(100, 1_000, 1_000, 1, &settings(200, true)),
            Readiness::SendNow
        );
        assert_eq!(
            readiness(250, 1_000, 1_000, 1, &settings(200, true)),
            Readiness::SendNow
        );
    }

    #[test]
    fn batch_when_idle_lingers_even_on_an_idle_endpoint() {
        let s = settings(300, true);
        assert_eq!(
            readiness(1, 1_000, 1_000, 0, &s),
            Readiness::WaitUntil(1_300)
        );
        assert_eq!(readiness(1, 1_000, 1_301, 0, &s), Readiness::SendNow);
    }

    #[test]
    fn a_zero_window_never_waits() {
        assert_eq!(
            readiness(1, 1_000, 1_000, 1, &settings(0, true)),
            Readiness::SendNow
        );
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let mut config = EngineConfig::default();
        config.actions.insert(
            "slow".into(),
            ActionOverrides {
                attempt_timeout: Some(Duration::from_secs(5)),
                retry_base: Some(Duration::from_secs(1)),
                per_endpoint: Some(4),
                ..Default::default()
            },
        );
        let slow = config.settings_for("slow");
        assert_eq!(slow.attempt_timeout, Duration::from_secs(5));
        assert_eq!(slow.retry.base, Duration::from_secs(1));
        assert_eq!(slow.retry.max, Duration::from_secs(7200), "global kept");
        assert_eq!(slow.per_endpoint, 4);
        let other = config.settings_for("other");
        assert_eq!(other.attempt_timeout, Duration::from_secs(60));
        assert_eq!(other.per_endpoint, 1);
        assert_eq!(other.retry, RetryPolicy::default());
    }
}
