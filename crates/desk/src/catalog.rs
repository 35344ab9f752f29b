//! What the desk knows at start: the organization, object schemas, Case statuses, outbound-message
//! actions and compiled rules, checked against each other once so that nothing fails later at run time.

use std::collections::BTreeMap;

use model::{CaseStatus, FieldValue, ObjectSchema, OutboundAction, Record, Rule, SfId};
use store::RecordRow;

use crate::auth::User;

/// The organization the desk plays.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: SfId,
    /// Base URL written into `EnterpriseUrl` / `PartnerUrl` (e.g. `https://example.my.salesforce.com`).
    pub instance_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("action {action}: object {object} is not defined")]
    ActionObject { action: String, object: String },
    #[error("action {action}: field {field} does not exist on {object}")]
    ActionField {
        action: String,
        object: String,
        field: String,
    },
    #[error("rule {rule}: action {action} is not defined")]
    RuleAction { rule: String, action: String },
    #[error("rule {rule}: action {action} is for {action_object}, the rule is for {rule_object}")]
    RuleActionObject {
        rule: String,
        action: String,
        action_object: String,
        rule_object: String,
    },
    #[error("rule {rule}: object {object} is not defined")]
    RuleObject { rule: String, object: String },
    #[error("{0}")]
    Rule(#[from] rules::RuleError),
    #[error("case statuses: {0}")]
    Statuses(String),
    #[error("two actions are named {0}")]
    DuplicateAction(String),
    #[error(
        "action {action}: a session id is sent only over https (Salesforce's rule), but the endpoint is {endpoint}"
    )]
    SessionOverHttp { action: String, endpoint: String },
    #[error(
        "action {action}: it sends a session id, so its integration user ({user}) must be configured as a user (configured: {known})"
    )]
    SessionUser {
        action: String,
        user: String,
        known: String,
    },
    #[error("user {0}: {1}")]
    User(String, String),
}

pub struct Catalog {
    pub org: Org,
    statuses: Vec<CaseStatus>,
    schemas: BTreeMap<String, ObjectSchema>,
    actions: BTreeMap<String, OutboundAction>,
    rules: BTreeMap<String, Vec<rules::CompiledRule>>,
    users: Vec<User>,
}

impl Catalog {
    pub fn new(
        org: Org,
        statuses: Vec<CaseStatus>,
        schemas: impl IntoIterator<Item = ObjectSchema>,
        actions: impl IntoIterator<Item = OutboundAction>,
        rule_defs: impl IntoIterator<Item = Rule>,
    ) -> Result<Self, CatalogError> {
        if statuses.is_empty() {
            return Err(CatalogError::Statuses(
                "at least one status is needed".into(),
            ));
        }
        if !statuses.iter().any(|s| s.closed) {
            return Err(CatalogError::Statuses("no status is marked closed".into()));
        }
        let schemas: BTreeMap<String, ObjectSchema> =
            schemas.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut action_map = BTreeMap::new();
        for action in actions {
            let schema = schemas
                .get(&action.object)
                .ok_or_else(|| CatalogError::ActionObject {
                    action: action.name.clone(),
                    object: action.object.clone(),
                })?;
            for field in &action.fields {
                if schema.field(field).is_none() {
                    return Err(CatalogError::ActionField {
                        action: action.name.clone(),
                        object: action.object.clone(),
                        field: field.clone(),
                    });
                }
            }
            let name = action.name.clone();
            if action_map.insert(name.clone(), action).is_some() {
                return Err(CatalogError::DuplicateAction(name));
            }
        }
        let mut compiled: BTreeMap<String, Vec<rules::CompiledRule>> = BTreeMap::new();
        for rule in rule_defs {
            let schema = schemas
                .get(&rule.object)
                .ok_or_else(|| CatalogError::RuleObject {
                    rule: rule.name.clone(),
                    object: rule.object.clone(),
                })?;
            for action_name in &rule.actions {
                let action: &OutboundAction =
                    action_map
                        .get(action_name)
                        .ok_or_else(|| CatalogError::RuleAction {
                            rule: rule.name.clone(),
                            action: action_name.clone(),
                        })?;
                if action.object != rule.object {
                    return Err(CatalogError::RuleActionObject {
                        rule: rule.name.clone(),
                        action: action_name.clone(),
                        action_object: action.object.clone(),
                        rule_object: rule.object.clone(),
                    });
                }
            }
            compiled
                .entry(rule.object.clone())
                .or_default()
                .push(rules::compile(&rule, schema)?);
        }
        Ok(Self {
            org,
            statuses,
            schemas,
            actions: action_map,
            rules: compiled,
            users: Vec::new(),
        })
    }

    /// The users tokens may be minted for. Checks what depends on them: every action that sends a
    /// session id has an https endpoint and an integration user among `users`.
    pub fn with_users(mut self, users: Vec<User>) -> Result<Self, CatalogError> {
        let mut seen = std::collections::BTreeSet::new();
        for user in &users {
            if user.id.key_prefix() != model::id::prefix::USER {
                return Err(CatalogError::User(
                    user.name.clone(),
                    format!("id {} is not a user id (005...)", user.id),
                ));
            }
            if !seen.insert(user.name.to_ascii_lowercase()) {
                return Err(CatalogError::User(
                    user.name.clone(),
                    "configured twice".to_owned(),
                ));
            }
        }
        self.users = users;
        for action in self.actions.values().filter(|a| a.include_session_id) {
            let https = action
                .endpoint_url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
            if !https {
                return Err(CatalogError::SessionOverHttp {
                    action: action.name.clone(),
                    endpoint: action.endpoint_url.clone(),
                });
            }
            let configured = action
                .integration_user
                .as_deref()
                .is_some_and(|u| self.user(u).is_some());
            if !configured {
                return Err(CatalogError::SessionUser {
                    action: action.name.clone(),
                    user: action
                        .integration_user
                        .clone()
                        .unwrap_or_else(|| "none named".to_owned()),
                    known: if self.users.is_empty() {
                        "none configured".to_owned()
                    } else {
                        self.users
                            .iter()
                            .map(|u| u.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                });
            }
        }
        Ok(self)
    }

    /// A configured user by name; user names compare case-insensitively, as Salesforce's do.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// A schema by object name in any letter case (REST and SOQL resolve names so).
    pub fn find_schema(&self, object: &str) -> Option<&ObjectSchema> {
        self.schemas.get(object).or_else(|| {
            self.schemas
                .values()
                .find(|s| s.name.eq_ignore_ascii_case(object))
        })
    }

    pub fn schema(&self, object: &str) -> Option<&ObjectSchema> {
        self.schemas.get(object)
    }

    pub fn schemas(&self) -> impl Iterator<Item = &ObjectSchema> {
        self.schemas.values()
    }

    pub fn action(&self, name: &str) -> Option<&OutboundAction> {
        self.actions.get(name)
    }

    pub fn actions(&self) -> impl Iterator<Item = &OutboundAction> {
        self.actions.values()
    }

    pub fn rules_for(&self, object: &str) -> &[rules::CompiledRule] {
        self.rules.get(object).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn statuses(&self) -> &[CaseStatus] {
        &self.statuses
    }

    pub fn status(&self, name: &str) -> Option<&CaseStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    /// `EnterpriseUrl` for messages of `action`: the enterprise SOAP endpoint of the org at the action's
    /// API version, ending in the 15-character org id.
    pub fn enterprise_url(&self, action: &OutboundAction) -> String {
        self.soap_url('c', action)
    }

    pub fn partner_url(&self, action: &OutboundAction) -> String {
        self.soap_url('u', action)
    }

    fn soap_url(&self, kind: char, action: &OutboundAction) -> String {
        format!(
            "{}/services/Soap/{kind}/{}/{}",
            self.org.instance_url.trim_end_matches('/'),
            action.api_version,
            self.org.id.id15()
        )
    }

    /// Turns a stored row back into a typed record. Fields the schema no longer has are dropped, and a
    /// stored value that no longer fits its field's type is dropped with a warning rather than failing
    /// every read of the record.
    pub fn decode_record(&self, row: &RecordRow) -> Option<Record> {
        let schema = self.schema(&row.object)?;
        let id = SfId::parse(&row.id).ok()?;
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.data).ok()?;
        Some(decode_record_json(schema, id, &json))
    }
}

/// Types a record's JSON fields by `schema` (see [`Catalog::decode_record`] for what is dropped).
pub fn decode_record_json(
    schema: &ObjectSchema,
    id: SfId,
    json: &serde_json::Map<String, serde_json::Value>,
) -> Record {
    let mut record = Record {
        object: schema.name.clone(),
        id,
        fields: BTreeMap::new(),
    };
    for (name, value) in json {
        let Some(def) = schema.field(name) else {
            continue;
        };
        match FieldValue::from_json(name, def.ftype, value) {
            Ok(Some(v)) => {
                record.fields.insert(name.clone(), v);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(object = %schema.name, field = %name, "stored value dropped: {e}")
            }
        }
    }
    record
}
