//! The desk: record changes as Salesforce makes them. A save validates the client's fields against the
//! object's schema, applies Case semantics (status → `IsClosed`/`ClosedDate`, `CaseNumber`, audit dates),
//! evaluates the object's workflow rules on the old and new record, and writes the record together with
//! the notifications it triggers in one transaction (the transactional outbox). The delivery engine is
//! woken after the commit.

pub mod auth;
mod catalog;
mod query;
mod related;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use model::id::prefix;
use model::{FieldValue, IdGenerator, Record, SchemaError, SfId};
use serde_json::{Map, Value as Json};
use store::{DeskStore, NewNotification, RecordWrite, StoreError};
use tokio::sync::Notify;

pub use auth::User;
pub use catalog::{Catalog, CatalogError, Org, decode_record_json};
pub use query::QueryResult;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("The requested resource does not exist: sObject type '{0}' is not supported")]
    UnknownObject(String),
    #[error("The requested resource does not exist")]
    NotFound { object: String, id: String },
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<SchemaError>),
    #[error("the record kept changing while being saved; try again")]
    Contended,
    #[error("no user {0:?} is configured")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeskError {
    fn invalid(code: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        DeskError::Invalid(vec![SchemaError::new(code, message, fields)])
    }
}

/// How often a save is retried when another save of the same record won the race.
const MAX_SAVE_ATTEMPTS: usize = 16;

pub struct Desk {
    store: Arc<dyn DeskStore>,
    catalog: Arc<Catalog>,
    ids: IdGenerator,
    outbox_signal: Arc<Notify>,
    require_auth: bool,
    tokens: auth::TokenCache,
}

/// A saved record and the notifications the save queued.
#[derive(Debug, Clone)]
pub struct Saved {
    pub record: Record,
    pub queued: Vec<String>,
}

fn now() -> DateTime<Utc> {
    model::value::millis(Utc::now())
}

impl Desk {
    pub fn new(
        store: Arc<dyn DeskStore>,
        catalog: Arc<Catalog>,
        outbox_signal: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            catalog,
            ids: IdGenerator::new(),
            outbox_signal,
            require_auth: true,
            tokens: auth::TokenCache::default(),
        }
    }

    /// Whether the REST API needs a bearer token (default: yes, as Salesforce).
    pub fn with_auth_required(mut self, required: bool) -> Self {
        self.require_auth = required;
        self
    }

    pub fn auth_required(&self) -> bool {
        self.require_auth
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn store(&self) -> &Arc<dyn DeskStore> {
        &self.store
    }

    /// The schema of `object`, whose name may come in any letter case, as in Salesforce's REST API.
    fn schema(&self, object: &str) -> Result<&model::ObjectSchema, DeskError> {
        self.catalog
            .find_schema(object)
            .ok_or_else(|| DeskError::UnknownObject(object.to_owned()))
    }

    /// Mints an API token for a configured user (see [`auth`]).
    pub async fn issue_token(
        &self,
        user: &str,
        label: &str,
        expires: Option<DateTime<Utc>>,
    ) -> Result<String, DeskError> {
        auth::issue_token(
            self.store.as_ref(),
            &self.catalog,
            user,
            label,
            now(),
            expires,
        )
        .await
    }

    /// The configured user a bearer token authenticates as, `None` if it does not.
    pub async fn authenticate(&self, token: &str) -> Result<Option<&User>, DeskError> {
        auth::authenticate(
            self.store.as_ref(),
            &self.catalog,
            &self.tokens,
            token,
            now(),
        )
        .await
    }

    pub async fn get(&self, object: &str, id: &str) -> Result<Record, DeskError> {
        let object = self.schema(object)?.name.as_str();
        let not_found = || DeskError::NotFound {
            object: object.to_owned(),
            id: id.to_owned(),
        };
        let id = SfId::parse(id).map_err(|_| not_found())?;
        let row = self
            .store
            .get_record(object, id.as_str())
            .await?
            .ok_or_else(not_found)?;
        if row.deleted {
            return Err(not_found());
        }
        self.catalog.decode_record(&row).ok_or_else(not_found)
    }

    /// Creates a record from a client's JSON body.
    pub async fn create(&self, object: &str, body: &Map<String, Json>) -> Result<Saved, DeskError> {
        self.create_as(object, body, None).await
    }

    /// Creates a record for an authenticated caller: as in Salesforce, a record with an `OwnerId` field
    /// that the client leaves out is owned by the user who creates it.
    pub async fn create_as(
        &self,
        object: &str,
        body: &Map<String, Json>,
        caller: Option<&User>,
    ) -> Result<Saved, DeskError> {
        let schema = self.schema(object)?;
        let object = schema.name.as_str();
        let changes = schema.typed_changes(body).map_err(DeskError::Invalid)?;
        let at = now();
        let id = self
            .ids
            .next(&schema.key_prefix, at.timestamp_millis() as u64);
        let mut record = Record {
            object: object.to_owned(),
            id,
            fields: Default::default(),
        };
        for (name, value) in changes {
            record.set(&name, value);
        }
        if let Some(user) = caller
            && record.get("OwnerId").is_none()
            && schema
                .field("OwnerId")
                .is_some_and(|d| d.ftype == model::FieldType::Reference)
        {
            record.set("OwnerId", Some(FieldValue::Text(user.id.to_string())));
        }
        record.set("Id", Some(FieldValue::Text(record.id.to_string())));
        record.set("IsDeleted", Some(FieldValue::Bool(false)));
        record.set("CreatedDate", Some(FieldValue::DateTime(at)));
        if object == "Case" {
            let number = self.store.next_sequence("CaseNumber").await?;
            record.set("CaseNumber", Some(FieldValue::Text(format!("{number:08}"))));
            if record.get("IsEscalated").is_none() {
                record.set("IsEscalated", Some(FieldValue::Bool(false)));
            }
            if record.get("Status").is_none() {
                let first = self.catalog.statuses()[0].name.clone();
                record.set("Status", Some(FieldValue::Text(first)));
            }
            self.apply_case_status(None, &mut record, at)?;
        }
        touch(&mut record, at);
        let queued = self.commit(None, &record, None, false, at).await?;
        Ok(Saved { record, queued })
    }

    /// Updates a record with a client's JSON body (only the fields present change).
    pub async fn update(
        &self,
        object: &str,
        id: &str,
        body: &Map<String, Json>,
    ) -> Result<Saved, DeskError> {
        let schema = self.schema(object)?;
        let object = schema.name.as_str();
        let changes = schema.typed_changes(body).map_err(DeskError::Invalid)?;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let (old, version) = self.load_for_write(object, id).await?;
            let at = now();
            let mut record = old.clone();
            for (name, value) in &changes {
                record.set(name, value.clone());
            }
            if object == "Case" {
                self.apply_case_status(Some(&old), &mut record, at)?;
            }
            touch(&mut record, at);
            match self
                .commit(Some(&old), &record, Some(version), false, at)
                .await
            {
                Ok(queued) => return Ok(Saved { record, queued }),
                Err(DeskError::Store(StoreError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DeskError::Contended)
    }

    /// Soft-deletes a record. Notifications already queued for it stay queued; in `latest` mode they
    /// are sent with no fields, as Salesforce does for a record deleted before delivery.
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), DeskError> {
        let object = self.schema(object)?.name.as_str();
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let (old, version) = self.load_for_write(object, id).await?;
            let at = now();
            let mut record = old.clone();
            record.set("IsDeleted", Some(FieldValue::Bool(true)));
            touch(&mut record, at);
            match self.commit(None, &record, Some(version), true, at).await {
                Ok(_) => return Ok(()),
                Err(DeskError::Store(StoreError::Conflict(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DeskError::Contended)
    }

    async fn load_for_write(&self, object: &str, id: &str) -> Result<(Record, i64), DeskError> {
        let not_found = || DeskError::NotFound {
            object: object.to_owned(),
            id: id.to_owned(),
        };
        let parsed = SfId::parse(id).map_err(|_| not_found())?;
        let row = self
            .store
            .get_record(object, parsed.as_str())
            .await?
            .filter(|r| !r.deleted)
            .ok_or_else(not_found)?;
        let record = self.catalog.decode_record(&row).ok_or_else(not_found)?;
        Ok((record, row.version))
    }

    /// Keeps `IsClosed` and `ClosedDate` consistent with `Status`: set on entering a closed status,
    /// cleared on reopening, untouched while the record stays on the same side.
    fn apply_case_status(
        &self,
        old: Option<&Record>,
        record: &mut Record,
        at: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let status_name = match record.get("Status") {
            Some(FieldValue::Text(s)) => s.clone(),
            _ => {
                return Err(DeskError::invalid(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [Status]",
                    &["Status"],
                ));
            }
        };
        let status = self.catalog.status(&status_name).ok_or_else(|| {
            DeskError::invalid(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                format!(
                    "Status: bad value for restricted picklist field: {status_name} (allowed: {})",
                    self.catalog
                        .statuses()
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &["Status"],
            )
        })?;
        let was_closed = old
            .and_then(|o| o.get("IsClosed"))
            .and_then(FieldValue::as_bool)
            .unwrap_or(false);
        record.set("IsClosed", Some(FieldValue::Bool(status.closed)));
        match (was_closed, status.closed) {
            (false, true) => record.set("ClosedDate", Some(FieldValue::DateTime(at))),
            (true, false) => record.set("ClosedDate", None),
            _ => {}
        }
        Ok(())
    }

    /// Evaluates rules and writes the record with its notifications in one transaction.
    async fn commit(
        &self,
        old: Option<&Record>,
        record: &Record,
        expected_version: Option<i64>,
        deleted: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, DeskError> {
        let rules = self.catalog.rules_for(&record.object);
        // Salesforce evaluates no workflow rule on delete.
        let actions = if deleted || !rules.iter().any(|r| r.rule.active) {
            Vec::new()
        } else {
            let mut seen: Vec<&Record> = vec![record];
            seen.extend(old);
            let related = related::prefetch(self.store.as_ref(), &self.catalog, &seen).await?;
            let change = rules::Change {
                old,
                new: record,
                now: at,
                related: &related,
            };
            rules::actions_for_save(rules, &change)
        };
        let snapshot = Json::Object(record.to_json()).to_string();
        let mut notifications = Vec::with_capacity(actions.len());
        for name in &actions {
            let Some(action) = self.catalog.action(name) else {
                continue;
            };
            notifications.push(NewNotification {
                id: self
                    .ids
                    .next(prefix::NOTIFICATION, at.timestamp_millis() as u64)
                    .to_string(),
                action: action.name.clone(),
                endpoint: action.endpoint_url.clone(),
                object: record.object.clone(),
                record_id: record.id.to_string(),
                snapshot: snapshot.clone(),
                created: at.timestamp_millis(),
            });
        }
        let queued: Vec<String> = notifications.iter().map(|n| n.id.clone()).collect();
        self.store
            .save_record(RecordWrite {
                object: record.object.clone(),
                id: record.id.to_string(),
                data: snapshot,
                deleted,
                expected_version,
                notifications,
                now: at.timestamp_millis(),
            })
            .await?;
        if !queued.is_empty() {
            self.outbox_signal.notify_one();
        }
        Ok(queued)
    }
}

fn touch(record: &mut Record, at: DateTime<Utc>) {
    record.set("LastModifiedDate", Some(FieldValue::DateTime(at)));
    record.set("SystemModstamp", Some(FieldValue::DateTime(at)));
}
