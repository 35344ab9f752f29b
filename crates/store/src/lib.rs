//! The storage interface. Two traits, one per role: [`DeskStore`] (records, the transactional outbox,
//! delivery state and the attempt log) and [`InboxStore`] (received notifications and their apply
//! state). Backends implement both; `conformance` holds the test suite every backend must pass.
//!
//! Times are milliseconds since the Unix epoch ([`Millis`]) and always come from the caller, so that
//! retry and lease arithmetic can be tested with injected time.

pub mod conformance;

use async_trait::async_trait;
use serde::Serialize;

pub type Millis = i64;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or written now; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A write lost a race (the record changed since it was read, or the id exists already).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("storage error: {0}")]
    Backend(String),
}

// ---------------------------------------------------------------------------------------------------
// Desk

/// A stored record: its fields as a JSON object (typed by the object's schema, which the desk owns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRow {
    pub object: String,
    pub id: String,
    pub data: String,
    pub deleted: bool,
    pub version: i64,
}

/// A record change together with the notifications it triggers: committed together or not at all.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub object: String,
    pub id: String,
    pub data: String,
    pub deleted: bool,
    /// `None` inserts (conflict if the id exists); `Some(v)` updates only if the stored version is `v`.
    pub expected_version: Option<i64>,
    pub notifications: Vec<NewNotification>,
    pub now: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The `04l` id the notification keeps across every retry.
    pub id: String,
    pub action: String,
    pub endpoint: String,
    pub object: String,
    pub record_id: String,
    /// The record as it was at the change (JSON object), for actions in snapshot mode.
    pub snapshot: String,
    pub created: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// Waiting for (another) attempt.
    Pending,
    Delivered,
    /// Expired or given up and kept as a dead letter, re-sendable.
    Failed,
    /// Expired for an action without a dead-letter queue, as Salesforce drops it.
    Dropped,
    /// Removed by an operator (who and when are recorded).
    Deleted,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Failed => "failed",
            NotificationState::Dropped => "dropped",
            NotificationState::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => NotificationState::Pending,
            "delivered" => NotificationState::Delivered,
            "failed" => NotificationState::Failed,
            "dropped" => NotificationState::Dropped,
            "deleted" => NotificationState::Deleted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedNotification {
    pub id: String,
    pub action: String,
    pub endpoint: String,
    pub object: String,
    pub record_id: String,
    pub snapshot: String,
    pub created: Millis,
    pub state: NotificationState,
    pub attempts: u32,
    pub next_attempt: Millis,
    pub last_error: Option<String>,
    pub finished: Option<Millis>,
    /// Who removed it, for operator deletes.
    pub note: Option<String>,
}

/// One delivery attempt of one SOAP message (the attempt log never holds payloads or session ids).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub action: String,
    pub endpoint: String,
    pub started: Millis,
    pub duration_ms: i64,
    pub http_status: Option<u16>,
    pub delivered: bool,
    pub reason: Option<String>,
    pub notification_ids: Vec<String>,
}

/// What becomes of a notification after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    Retry {
        next_attempt: Millis,
    },
    /// Past its expiry: kept as failed (dead letter) or dropped.
    Expired {
        keep: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub action: Option<String>,
    pub endpoint: Option<String>,
    pub states: Vec<NotificationState>,
    /// Only notifications created at or before this time (older than an age).
    pub created_before: Option<Millis>,
    pub created_after: Option<Millis>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub deleted: u64,
}

/// What the delivery engine needs to know about one action's pending notifications to decide, without
/// claiming anything, whether to send now, wait for company (batching) or sleep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueAction {
    pub action: String,
    /// Pending notifications due at `now` and not held by a live lease.
    pub due: u64,
    /// The earliest `next_attempt` among those due (`None` when `due` is 0).
    pub oldest_due: Option<Millis>,
    /// When the next of the others becomes due (its `next_attempt` or the end of its lease, whichever
    /// is later); `None` when none waits.
    pub next_at: Option<Millis>,
}

/// An API token as stored: only its hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    /// Hex SHA-256 of the whole token text.
    pub hash: String,
    /// The configured user the token authenticates as.
    pub user: String,
    /// What minted it (`cli`, `outbound messages`), for an operator reading the table.
    pub label: String,
    pub created: Millis,
    /// `None`: valid until removed.
    pub expires: Option<Millis>,
}

impl QueueCounts {
    /// Counts from `(state, count)` rows of a `GROUP BY state`; unknown states are ignored.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut counts = Self::default();
        for (state, n) in rows {
            let n = n.max(0) as u64;
            match NotificationState::parse(&state) {
                Some(NotificationState::Pending) => counts.pending = n,
                Some(NotificationState::Delivered) => counts.delivered = n,
                Some(NotificationState::Failed) => counts.failed = n,
                Some(NotificationState::Dropped) => counts.dropped = n,
                Some(NotificationState::Deleted) => counts.deleted = n,
                None => {}
            }
        }
        counts
    }
}

#[async_trait]
pub trait DeskStore: Send + Sync + 'static {
    /// Next value of a named counter (CaseNumber), starting at 1.
    async fn next_sequence(&self, name: &str) -> Result<i64>;
    async fn get_record(&self, object: &str, id: &str) -> Result<Option<RecordRow>>;
    /// The records with these ids (any object), deleted ones included, in no particular order.
    async fn get_records(&self, ids: &[String]) -> Result<Vec<RecordRow>>;
    /// Writes the record and queues its notifications in one transaction. Returns the new version.
    async fn save_record(&self, write: RecordWrite) -> Result<i64>;
    /// Claims up to `limit` due notifications of one action, oldest first, under a lease until `lease_until`.
    async fn claim(
        &self,
        action: &str,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<QueuedNotification>>;
    /// Records an attempt and the fate of each notification it carried, in one transaction.
    async fn finish_attempt(
        &self,
        attempt: AttemptRecord,
        outcomes: Vec<(String, AfterAttempt)>,
    ) -> Result<()>;
    /// Gives claimed notifications back without counting an attempt (graceful shutdown).
    async fn release(&self, ids: &[String]) -> Result<()>;

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueuedNotification>>;
    async fn get_notification(&self, id: &str) -> Result<Option<QueuedNotification>>;
    /// Makes pending or failed notifications due now (operator retry / resend). Returns how many changed.
    async fn retry_now(&self, ids: &[String], now: Millis) -> Result<usize>;
    /// Removes pending or failed notifications from delivery, recording who did it. Returns how many.
    async fn delete_notifications(&self, ids: &[String], who: &str, now: Millis) -> Result<usize>;
    async fn queue_counts(&self) -> Result<QueueCounts>;
    /// The attempt log, newest first, optionally only attempts that carried `notification_id`.
    async fn attempts(
        &self,
        notification_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>>;
    /// Per action with pending notifications: how many are due at `now` (unleased), the oldest due time,
    /// and when the next one of the rest becomes due. One read that lets the engine batch and sleep
    /// precisely.
    async fn due_summary(&self, now: Millis) -> Result<Vec<DueAction>>;

    /// Live (not deleted) records of `object` whose id sorts after `after`, in id order, at most
    /// `limit`: a page of a scan (SOQL queries filter the pages).
    async fn list_records(
        &self,
        object: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecordRow>>;
    /// Stores a token (by hash; a second token with the same hash conflicts). Backends may remove tokens
    /// that expired before `token.created` at the same time.
    async fn put_token(&self, token: TokenRow) -> Result<()>;
    /// The token with this hash if it is stored and not expired at `now`.
    async fn find_token(&self, hash: &str, now: Millis) -> Result<Option<TokenRow>>;
}

// ---------------------------------------------------------------------------------------------------
// Inbox

#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedNotification {
    pub id: String,
    pub route: String,
    pub organization_id: String,
    pub action_id: String,
    pub object_type: String,
    pub record_id: Option<String>,
    /// The record version (SystemModstamp or LastModifiedDate) used to apply in order.
    pub version: Option<Millis>,
    /// Fields as a JSON array of `[name, value-or-null]` pairs, in document order.
    pub fields: String,
    pub received: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxState {
    Received,
    Applied,
    /// Not applied because a newer version of the record was applied already.
    Stale,
    /// The record was deleted before delivery: nothing to apply.
    Empty,
    Quarantined,
}

impl InboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Received => "received",
            InboxState::Applied => "applied",
            InboxState::Stale => "stale",
            InboxState::Empty => "empty",
            InboxState::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "received" => InboxState::Received,
            "applied" => InboxState::Applied,
            "stale" => InboxState::Stale,
            "empty" => InboxState::Empty,
            "quarantined" => InboxState::Quarantined,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxRow {
    pub id: String,
    pub route: String,
    pub organization_id: String,
    pub action_id: String,
    pub object_type: String,
    pub record_id: Option<String>,
    pub version: Option<Millis>,
    pub fields: String,
    pub received: Millis,
    pub state: InboxState,
    pub attempts: u32,
    pub next_attempt: Millis,
    pub last_error: Option<String>,
    pub finished: Option<Millis>,
}

/// The final outcome of applying one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    Stale(String),
    Empty,
}

/// Orders notifications due for apply (fetched in arrival order): per record, oldest version first;
/// records keep their arrival order among each other. Without a version, arrival order.
pub fn order_for_apply(rows: &mut [InboxRow]) {
    let mut first_seen: std::collections::HashMap<(String, Option<String>), usize> =
        Default::default();
    for (i, r) in rows.iter().enumerate() {
        first_seen
            .entry((r.object_type.clone(), r.record_id.clone()))
            .or_insert(i);
    }
    rows.sort_by_cached_key(|r| {
        let group = first_seen[&(r.object_type.clone(), r.record_id.clone())];
        (group, r.version.unwrap_or(i64::MAX))
    });
}

#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub route: Option<String>,
    pub states: Vec<InboxState>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxCounts {
    pub received: u64,
    pub applied: u64,
    pub stale: u64,
    pub empty: u64,
    pub quarantined: u64,
}

impl InboxCounts {
    /// Counts from `(state, count)` rows of a `GROUP BY state`; unknown states are ignored.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut counts = Self::default();
        for (state, n) in rows {
            let n = n.max(0) as u64;
            match InboxState::parse(&state) {
                Some(InboxState::Received) => counts.received = n,
                Some(InboxState::Applied) => counts.applied = n,
                Some(InboxState::Stale) => counts.stale = n,
                Some(InboxState::Empty) => counts.empty = n,
                Some(InboxState::Quarantined) => counts.quarantined = n,
                None => {}
            }
        }
        counts
    }
}

#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// Stores each notification once by id, all in one transaction; ids already stored are left as
    /// they are. Returns how many were new. Only after this returns Ok may the sender be acked.
    async fn store_received(&self, batch: Vec<ReceivedNotification>) -> Result<usize>;
    /// Notifications waiting to be applied and due at `now`, ordered by record and version so that a
    /// record's changes apply oldest first.
    async fn due_for_apply(&self, now: Millis, limit: usize) -> Result<Vec<InboxRow>>;
    async fn next_apply_due(&self) -> Result<Option<Millis>>;
    async fn record_applied(
        &self,
        outcomes: Vec<(String, ApplyOutcome)>,
        now: Millis,
    ) -> Result<()>;
    /// A failed apply: retry at `next_attempt`, or quarantine when `None`.
    async fn record_apply_failure(
        &self,
        id: &str,
        reason: &str,
        next_attempt: Option<Millis>,
        now: Millis,
    ) -> Result<()>;
    async fn get_received(&self, id: &str) -> Result<Option<InboxRow>>;
    async fn list_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxRow>>;
    /// Puts quarantined (or any finished) notifications back to be applied now. Returns how many.
    async fn replay(&self, ids: &[String], now: Millis) -> Result<usize>;
    async fn inbox_counts(&self) -> Result<InboxCounts>;
    /// The newest version of a record applied through `route` (the largest `version` among its
    /// notifications in state `applied`), for adapters that do not track versions in the legacy
    /// system themselves. `None` when none with a version was applied.
    async fn newest_applied_version(
        &self,
        route: &str,
        object_type: &str,
        record_id: &str,
    ) -> Result<Option<Millis>>;
    /// An operator moves notifications that are still waiting (state `received`) to quarantine with
    /// `reason`, without counting an attempt. Returns how many changed.
    async fn quarantine(&self, ids: &[String], reason: &str, now: Millis) -> Result<usize>;
}
