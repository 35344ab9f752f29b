//! The delivery-status queue, as operations an admin API and a CLI share: list with filters, show one
//! notification with its attempt log, retry now, delete (recording who), dead letters and resend.
//! Times are passed in, so what is shown (ages, due times) is testable.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use store::{
    AttemptRecord, DeskStore, Millis, NotificationState, QueueFilter, QueuedNotification,
    StoreError,
};
use tokio::sync::Notify;

/// What to list. Without states, the queue proper: pending and failed notifications.
#[derive(Debug, Clone, Default)]
pub struct QueueQuery {
    pub action: Option<String>,
    pub endpoint: Option<String>,
    pub states: Vec<NotificationState>,
    /// Only notifications at least this old (from their change, or from an operator's resend).
    pub older_than: Option<Duration>,
    /// Only notifications created at or after this time.
    pub since: Option<Millis>,
    /// 0 = no limit.
    pub limit: usize,
}

/// One line of the delivery-status queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub notification_id: String,
    pub action: String,
    pub endpoint: String,
    pub record_id: String,
    pub state: NotificationState,
    pub attempts: u32,
    /// When the next attempt is due (pending notifications only), RFC 3339 UTC.
    pub next_attempt: Option<String>,
    pub last_failure: Option<String>,
    pub created: String,
    pub age_seconds: i64,
    /// When it left the queue (delivered, failed, dropped, deleted).
    pub finished: Option<String>,
    /// Who deleted it, for operator deletes.
    pub note: Option<String>,
}

/// One attempt of the message log (never a payload or a session id: they are not stored in it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptEntry {
    pub time: String,
    pub duration_ms: i64,
    pub http_status: Option<u16>,
    /// `delivered` or `failed`.
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub notification_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub entry: QueueEntry,
    pub attempt_log: Vec<AttemptEntry>,
}

/// The queue operations over a desk store. `signal` wakes a delivery engine in this process after a
/// retry or resend; an engine in another process notices within its idle poll.
#[derive(Clone)]
pub struct QueueAdmin {
    store: Arc<dyn DeskStore>,
    signal: Option<Arc<Notify>>,
}

/// Most attempts shown for one notification.
const ATTEMPT_LOG_LIMIT: usize = 200;

pub fn rfc3339(at: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| at.to_string())
}

impl QueueAdmin {
    pub fn new(store: Arc<dyn DeskStore>, signal: Option<Arc<Notify>>) -> Self {
        Self { store, signal }
    }

    pub fn entry(n: &QueuedNotification, now: Millis) -> QueueEntry {
        QueueEntry {
            notification_id: n.id.clone(),
            action: n.action.clone(),
            endpoint: n.endpoint.clone(),
            record_id: n.record_id.clone(),
            state: n.state,
            attempts: n.attempts,
            next_attempt: (n.state == NotificationState::Pending).then(|| rfc3339(n.next_attempt)),
            last_failure: n.last_error.clone(),
            created: rfc3339(n.created),
            age_seconds: (now - n.created).max(0) / 1000,
            finished: n.finished.map(rfc3339),
            note: n.note.clone(),
        }
    }

    pub async fn list(
        &self,
        query: &QueueQuery,
        now: Millis,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let states = if query.states.is_empty() {
            vec![NotificationState::Pending, NotificationState::Failed]
        } else {
            query.states.clone()
        };
        let filter = QueueFilter {
            action: query.action.clone(),
            endpoint: query.endpoint.clone(),
            states,
            created_before: query.older_than.map(|age| now - age.as_millis() as i64),
            created_after: query.since,
            limit: query.limit,
        };
        let rows = self.store.list_queue(&filter).await?;
        Ok(rows.iter().map(|n| Self::entry(n, now)).collect())
    }

    /// One notification (any state) with the attempts that carried it, newest first.
    pub async fn show(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<NotificationDetail>, StoreError> {
        let Some(n) = self.store.get_notification(id).await? else {
            return Ok(None);
        };
        let attempts = self.store.attempts(Some(id), ATTEMPT_LOG_LIMIT).await?;
        Ok(Some(NotificationDetail {
            entry: Self::entry(&n, now),
            attempt_log: attempts.iter().map(attempt_entry).collect(),
        }))
    }

    /// Makes pending or failed notifications due now. Returns how many changed.
    pub async fn retry(&self, ids: &[String], now: Millis) -> Result<usize, StoreError> {
        let n = self.store.retry_now(ids, now).await?;
        self.wake(n);
        Ok(n)
    }

    /// Removes pending or failed notifications from delivery, recording who and when.
    pub async fn delete(
        &self,
        ids: &[String],
        who: &str,
        now: Millis,
    ) -> Result<usize, StoreError> {
        self.store.delete_notifications(ids, who, now).await
    }

    /// Dead letters: failed notifications, optionally of one action and created since a time.
    pub async fn failed(
        &self,
        action: Option<&str>,
        since: Option<Millis>,
        now: Millis,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.list(
            &QueueQuery {
                action: action.map(str::to_owned),
                states: vec![NotificationState::Failed],
                since,
                ..Default::default()
            },
            now,
        )
        .await
    }

    /// Sends every failed notification of `action` created since `since` again (as new: its expiry
    /// starts over). Returns the ids put back in the queue.
    pub async fn resend_failed(
        &self,
        action: &str,
        since: Option<Millis>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let failed = self.failed(Some(action), since, now).await?;
        let ids: Vec<String> = failed.into_iter().map(|e| e.notification_id).collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        self.retry(&ids, now).await?;
        Ok(ids)
    }

    fn wake(&self, changed: usize) {
        if changed > 0
            && let Some(signal) = &self.signal
        {
            signal.notify_one();
        }
    }
}

fn attempt_entry(a: &AttemptRecord) -> AttemptEntry {
    AttemptEntry {
        time: rfc3339(a.started),
        duration_ms: a.duration_ms,
        http_status: a.http_status,
        outcome: if a.delivered { "delivered" } else { "failed" },
        reason: a.reason.clone(),
        notification_ids: a.notification_ids.clone(),
    }
}

/// A short human age: `42s`, `3m12s`, `5h04m`, `2d03h`.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(0), "0s");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(192), "3m12s");
        assert_eq!(human_age(5 * 3600 + 4 * 60), "5h04m");
        assert_eq!(human_age(2 * 86400 + 3 * 3600 + 5), "2d03h");
        assert_eq!(human_age(-5), "0s");
    }

    #[test]
    fn entries_show_due_time_only_while_pending() {
        let mut n = QueuedNotification {
            id: "04l000000000001AAA".into(),
            action: "a".into(),
            endpoint: "http://example.com:8080/x".into(),
            object: "Case".into(),
            record_id: "500000000000001AAA".into(),
            snapshot: "{}".into(),
            created: 1_700_000_000_000,
            state: NotificationState::Pending,
            attempts: 2,
            next_attempt: 1_700_000_060_000,
            last_error: Some("HTTP 503 Service Unavailable".into()),
            finished: None,
            note: None,
        };
        let e = QueueAdmin::entry(&n, 1_700_000_090_500);
        assert_eq!(e.next_attempt.as_deref(), Some("2023-11-14T22:14:20.000Z"));
        assert_eq!(e.age_seconds, 90);
        assert_eq!(e.created, "2023-11-14T22:13:20.000Z");
        n.state = NotificationState::Failed;
        assert_eq!(QueueAdmin::entry(&n, 0).next_attempt, None);
    }
}
