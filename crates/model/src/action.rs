//! Outbound-message actions: what to send, where, and how.

use serde::{Deserialize, Serialize};

use crate::id::SfId;

/// Which state of the record a notification carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    /// As Salesforce: the record as it is when the message is sent (a deleted record sends no fields).
    #[default]
    Latest,
    /// The record as it was at the change that queued the notification: an audit trail.
    Snapshot,
}

/// An outbound-message action (Metadata API `WorkflowOutboundMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundAction {
    /// `fullName`: the API name rules refer to.
    pub name: String,
    /// The `04k` id that messages carry as `ActionId`.
    pub id: SfId,
    pub object: String,
    pub endpoint_url: String,
    /// Selected fields. `Id` is always sent whether listed or not.
    pub fields: Vec<String>,
    pub api_version: String,
    pub include_session_id: bool,
    pub integration_user: Option<String>,
    /// Keep expired notifications as failed (dead letter) instead of dropping them.
    pub use_dead_letter_queue: bool,
    pub payload_mode: PayloadMode,
    pub description: Option<String>,
}

impl OutboundAction {
    /// The fields a message carries: `Id` first, then the selected fields in ASCII order, each once.
    pub fn wire_fields(&self) -> Vec<&str> {
        let mut rest: Vec<&str> = self
            .fields
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "Id")
            .collect();
        rest.sort_unstable();
        rest.dedup();
        let mut out = Vec::with_capacity(rest.len() + 1);
        out.push("Id");
        out.extend(rest);
        out
    }
}
