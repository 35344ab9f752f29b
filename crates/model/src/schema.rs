//! Object schemas: which fields an object has, of which types, and which a client may write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::value::{FieldType, FieldValue};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ftype: FieldType,
    /// System-maintained fields (Id, CaseNumber, IsClosed, dates) are read-only to clients.
    #[serde(default = "yes")]
    pub updateable: bool,
}

fn yes() -> bool {
    true
}

/// A status value of the Case object, with whether it means closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseStatus {
    pub name: String,
    #[serde(default)]
    pub closed: bool,
}

impl CaseStatus {
    pub fn defaults() -> Vec<CaseStatus> {
        ["New", "Working", "Escalated", "Closed"]
            .into_iter()
            .map(|name| CaseStatus {
                name: name.to_owned(),
                closed: name == "Closed",
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSchema {
    pub name: String,
    /// The 3-character key prefix of ids of this object.
    pub key_prefix: String,
    pub fields: BTreeMap<String, FieldDef>,
}

/// One error in Salesforce's REST error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_code}: {message}")]
pub struct SchemaError {
    pub message: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    pub fields: Vec<String>,
}

impl SchemaError {
    pub fn new(code: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        Self {
            message: message.into(),
            error_code: code.to_owned(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

const CASE_FIELDS: &[(&str, FieldType, bool)] = &[
    ("Id", FieldType::Id, false),
    ("CaseNumber", FieldType::String, false),
    ("Subject", FieldType::String, true),
    ("Description", FieldType::Textarea, true),
    ("Status", FieldType::Picklist, true),
    ("Priority", FieldType::Picklist, true),
    ("Origin", FieldType::Picklist, true),
    ("Reason", FieldType::Picklist, true),
    ("Type", FieldType::Picklist, true),
    ("AccountId", FieldType::Reference, true),
    ("ContactId", FieldType::Reference, true),
    ("OwnerId", FieldType::Reference, true),
    ("IsClosed", FieldType::Boolean, false),
    ("ClosedDate", FieldType::Datetime, false),
    ("IsEscalated", FieldType::Boolean, true),
    ("IsDeleted", FieldType::Boolean, false),
    ("CreatedDate", FieldType::Datetime, false),
    ("LastModifiedDate", FieldType::Datetime, false),
    ("SystemModstamp", FieldType::Datetime, false),
];

/// Fields every object has and only the system writes.
const SYSTEM_FIELDS: &[(&str, FieldType)] = &[
    ("Id", FieldType::Id),
    ("IsDeleted", FieldType::Boolean),
    ("CreatedDate", FieldType::Datetime),
    ("LastModifiedDate", FieldType::Datetime),
    ("SystemModstamp", FieldType::Datetime),
];

impl ObjectSchema {
    /// The built-in Case object with its standard fields.
    pub fn case() -> Self {
        let fields = CASE_FIELDS
            .iter()
            .map(|(name, ftype, updateable)| {
                (
                    (*name).to_owned(),
                    FieldDef {
                        name: (*name).to_owned(),
                        ftype: *ftype,
                        updateable: *updateable,
                    },
                )
            })
            .collect();
        Self {
            name: "Case".to_owned(),
            key_prefix: crate::id::prefix::CASE.to_owned(),
            fields,
        }
    }

    /// A further object (Account, Contact, a custom object) with the system fields plus `fields`.
    pub fn custom(
        name: &str,
        key_prefix: &str,
        fields: impl IntoIterator<Item = FieldDef>,
    ) -> Self {
        let mut map: BTreeMap<String, FieldDef> = SYSTEM_FIELDS
            .iter()
            .map(|(n, t)| {
                (
                    (*n).to_owned(),
                    FieldDef {
                        name: (*n).to_owned(),
                        ftype: *t,
                        updateable: false,
                    },
                )
            })
            .collect();
        for f in fields {
            map.insert(f.name.clone(), f);
        }
        Self {
            name: name.to_owned(),
            key_prefix: key_prefix.to_owned(),
            fields: map,
        }
    }

    pub fn add_field(&mut self, field: FieldDef) {
        self.fields.insert(field.name.clone(), field);
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.get(name)
    }

    /// A field by its API name in any letter case, as Salesforce's APIs resolve names.
    pub fn field_ci(&self, name: &str) -> Option<&FieldDef> {
        self.fields.get(name).or_else(|| {
            self.fields
                .values()
                .find(|d| d.name.eq_ignore_ascii_case(name))
        })
    }

    /// Validates a client's JSON body for insert or update: every field must exist, be writable and
    /// hold a value of its type. Returns the typed changes (None = set to null) or every error found.
    pub fn typed_changes(
        &self,
        body: &Map<String, Json>,
    ) -> Result<Vec<(String, Option<FieldValue>)>, Vec<SchemaError>> {
        let mut changes = Vec::with_capacity(body.len());
        let mut errors = Vec::new();
        for (name, json) in body {
            if name == "attributes" {
                // Clients such as simple-salesforce may echo the `attributes` block; it carries no data.
                continue;
            }
            let Some(def) = self.field_ci(name) else {
                errors.push(SchemaError::new(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on sobject of type {}", self.name),
                    &[name],
                ));
                continue;
            };
            if !def.updateable {
                errors.push(SchemaError::new(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                    &[name],
                ));
                continue;
            }
            match FieldValue::from_json(&def.name, def.ftype, json) {
                // The schema's spelling: `subject` from a client is stored as `Subject`.
                Ok(value) => changes.push((def.name.clone(), value)),
                Err(e) => errors.push(SchemaError::new(
                    "JSON_PARSER_ERROR",
                    format!("Cannot deserialize value for field {name}: {e}"),
                    &[name],
                )),
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_read_only_and_mistyped_fields_are_each_named() {
        let schema = ObjectSchema::case();
        let body: Map<String, Json> = serde_json::from_str(
            r#"{"Subject":"ok","Bogus__c":1,"IsClosed":true,"IsEscalated":"maybe"}"#,
        )
        .unwrap();
        let errors = schema.typed_changes(&body).unwrap_err();
        let codes: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.error_code.as_str(), e.fields[0].as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("INVALID_FIELD", "Bogus__c"),
                ("INVALID_FIELD_FOR_INSERT_UPDATE", "IsClosed"),
                ("JSON_PARSER_ERROR", "IsEscalated"),
            ]
        );
    }

    #[test]
    fn field_names_match_in_any_case_and_come_back_in_the_schemas_spelling() {
        let schema = ObjectSchema::case();
        let body: Map<String, Json> =
            serde_json::from_str(r#"{"subject":"ok","ISESCALATED":true}"#).unwrap();
        assert_eq!(
            schema.typed_changes(&body).unwrap(),
            vec![
                ("IsEscalated".to_owned(), Some(FieldValue::Bool(true))),
                ("Subject".to_owned(), Some(FieldValue::Text("ok".into()))),
            ]
        );
    }

    #[test]
    fn null_clears_a_field() {
        let schema = ObjectSchema::case();
        let body: Map<String, Json> = serde_json::from_str(r#"{"Subject":null}"#).unwrap();
        assert_eq!(
            schema.typed_changes(&body).unwrap(),
            vec![("Subject".to_owned(), None)]
        );
    }
}
