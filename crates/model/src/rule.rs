//! Workflow rule definitions (Metadata API `WorkflowRule`). Evaluation lives in the `rules` crate.

use serde::{Deserialize, Serialize};

/// Metadata API `triggerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerType {
    #[serde(rename = "onCreateOnly")]
    OnCreateOnly,
    #[serde(rename = "onAllChanges")]
    OnAllChanges,
    #[serde(rename = "onCreateOrTriggeringUpdate")]
    OnCreateOrTriggeringUpdate,
}

impl TriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::OnCreateOnly => "onCreateOnly",
            TriggerType::OnAllChanges => "onAllChanges",
            TriggerType::OnCreateOrTriggeringUpdate => "onCreateOrTriggeringUpdate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriteriaItem {
    pub field: String,
    pub operation: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criteria {
    /// Criteria items, all of which must hold unless `boolean_filter` combines them otherwise.
    Items {
        items: Vec<CriteriaItem>,
        #[serde(default)]
        boolean_filter: Option<String>,
    },
    /// A formula that must evaluate to true.
    Formula(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub object: String,
    pub active: bool,
    pub trigger: TriggerType,
    pub criteria: Criteria,
    /// Names of outbound-message actions.
    pub actions: Vec<String>,
}
