//! Field references (`Status`, `Case.Status`, `Account.Name`, `Parent__r.Name`) resolved against a
//! schema, and the standard-field knowledge used when there is no schema.

use model::{FieldType, ObjectSchema, Record};

use crate::Related;
use crate::value::{EvalResult, Val, lookup, read};

/// A resolved reference: a field of the rule's object, or a field one lookup away.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldRef {
    Own {
        /// The schema's spelling of the name.
        name: String,
        /// `None` when compiled without a schema and the name is not a well-known standard field.
        ftype: Option<FieldType>,
    },
    Lookup {
        /// The lookup field on the rule's object (`AccountId`, `Parent__c`).
        lookup_field: String,
        /// The relationship as written (`Account`, `Parent__r`), for messages.
        relationship: String,
        /// The target object when the relationship name says it (standard relationships).
        standard_target: Option<String>,
        /// The field on the related record; its type is only known at run time.
        field: String,
    },
}

impl FieldRef {
    /// The static type, `None` when only the run-time value will tell.
    pub fn ftype(&self) -> Option<FieldType> {
        match self {
            FieldRef::Own { ftype, .. } => *ftype,
            FieldRef::Lookup { .. } => None,
        }
    }

    pub fn is_own(&self) -> bool {
        matches!(self, FieldRef::Own { .. })
    }

    pub fn display(&self) -> String {
        match self {
            FieldRef::Own { name, .. } => name.clone(),
            FieldRef::Lookup {
                relationship,
                field,
                ..
            } => format!("{relationship}.{field}"),
        }
    }

    /// Reads the value from `record`, following the lookup through `related` when needed. A missing
    /// lookup id or related record reads as null, as in Salesforce.
    pub fn read(&self, record: &Record, related: &dyn Related) -> EvalResult<Val> {
        match self {
            FieldRef::Own { name, ftype } => read(record, name, *ftype),
            FieldRef::Lookup {
                lookup_field,
                standard_target,
                field,
                ..
            } => {
                let Some(id) = lookup(record, lookup_field).and_then(|v| v.as_text()) else {
                    return Ok(Val::Null);
                };
                let object = target_object(standard_target.as_deref(), id);
                match related.get(object, id) {
                    Some(other) => read(&other, field, None),
                    None => Ok(Val::Null),
                }
            }
        }
    }
}

/// Why a reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// Not a field of the object.
    Unknown(String),
    /// A reference casewire refuses, with the reason.
    Unsupported(String),
}

/// What a rule's references resolve against.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub object: &'a str,
    /// `None` at import time: references are checked for shape only, field types come from
    /// [`standard_type`] or stay unknown.
    pub schema: Option<&'a ObjectSchema>,
}

impl Scope<'_> {
    /// A field of the rule's object.
    pub fn own(&self, name: &str) -> Result<FieldRef, ResolveError> {
        let (name, ftype) = self.own_field(name)?;
        Ok(FieldRef::Own { name, ftype })
    }

    /// The schema's spelling and type of a field of the rule's object.
    fn own_field(&self, name: &str) -> Result<(String, Option<FieldType>), ResolveError> {
        if !is_api_name(name) {
            return Err(ResolveError::Unsupported(format!(
                "{name:?} is not a field name"
            )));
        }
        match self.schema {
            Some(schema) => {
                let def = schema.field(name).or_else(|| {
                    schema
                        .fields
                        .values()
                        .find(|d| d.name.eq_ignore_ascii_case(name))
                });
                match def {
                    Some(def) => Ok((def.name.clone(), Some(def.ftype))),
                    None => Err(ResolveError::Unknown(name.to_owned())),
                }
            }
            None => Ok((name.to_owned(), standard_type(self.object, name))),
        }
    }

    /// `relationship.field`, one lookup away.
    pub fn lookup(&self, relationship: &str, field: &str) -> Result<FieldRef, ResolveError> {
        if !is_api_name(relationship) || !is_api_name(field) {
            return Err(ResolveError::Unsupported(format!(
                "{relationship}.{field} is not a field reference"
            )));
        }
        let lookup_name = lookup_field_of(relationship);
        let (lookup_field, ftype) = self.own_field(&lookup_name)?;
        if let Some(t) = ftype
            && !matches!(t, FieldType::Reference | FieldType::Id)
        {
            return Err(ResolveError::Unsupported(format!(
                "{relationship}.{field} needs {lookup_field} to be a lookup field, but it is {}",
                t.name()
            )));
        }
        Ok(FieldRef::Lookup {
            lookup_field,
            relationship: relationship.to_owned(),
            standard_target: standard_target(self.object, relationship),
            field: field.to_owned(),
        })
    }
}

/// `Account` -> `AccountId`, `Parent__r` -> `Parent__c`.
pub(crate) fn lookup_field_of(relationship: &str) -> String {
    match strip_suffix_ci(relationship, "__r") {
        Some(stem) => format!("{stem}__c"),
        None => format!("{relationship}Id"),
    }
}

fn strip_suffix_ci<'s>(s: &'s str, suffix: &str) -> Option<&'s str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

/// The object a standard relationship points at. Custom relationships (`__r`) do not say, and the model's
/// field definitions do not record lookup targets yet.
fn standard_target(object: &str, relationship: &str) -> Option<String> {
    if relationship.to_ascii_lowercase().ends_with("__r") {
        return None;
    }
    Some(match relationship {
        "Owner" | "CreatedBy" | "LastModifiedBy" => "User".to_owned(),
        "Parent" | "MasterRecord" => object.to_owned(),
        other => other.to_owned(),
    })
}

/// The object to ask [`Related`] for: known key prefixes win (an `Owner` may be a user or a queue), then
/// the relationship's standard target, else empty (the caller finds the record by id alone).
fn target_object<'a>(standard: Option<&'a str>, id: &str) -> &'a str {
    let by_prefix = match id.get(..3) {
        Some("001") => Some("Account"),
        Some("003") => Some("Contact"),
        Some("005") => Some("User"),
        Some("00G") => Some("Group"),
        Some("500") => Some("Case"),
        Some("00Q") => Some("Lead"),
        Some("006") => Some("Opportunity"),
        _ => None,
    };
    by_prefix.or(standard).unwrap_or("")
}

/// Letters, digits and underscores, starting with a letter: what Salesforce allows in API names.
pub(crate) fn is_api_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The type of a well-known standard field, used when no schema is given (import) and to type the
/// permissive schema [`crate::schema_for_import`] builds. Custom fields (`__c`) are never guessed here.
pub(crate) fn standard_type(object: &str, name: &str) -> Option<FieldType> {
    if name.contains("__") {
        return None;
    }
    if object.eq_ignore_ascii_case("Case")
        && let Some(def) = ObjectSchema::case()
            .fields
            .values()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    {
        return Some(def.ftype);
    }
    let t = match name {
        "Id" => FieldType::Id,
        "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => FieldType::Datetime,
        "LastActivityDate" | "ConvertedDate" | "CloseDate" => FieldType::Date,
        "Status"
        | "Priority"
        | "Origin"
        | "Reason"
        | "Type"
        | "LeadSource"
        | "Industry"
        | "Rating"
        | "StageName"
        | "Salutation"
        | "ForecastCategoryName" => FieldType::Picklist,
        "Name" | "Title" | "Subject" | "FirstName" | "LastName" | "Company" | "CaseNumber"
        | "AccountNumber" | "Site" => FieldType::String,
        "Description" => FieldType::Textarea,
        "Email" => FieldType::Email,
        "Phone" | "Fax" | "MobilePhone" => FieldType::Phone,
        "Website" => FieldType::Url,
        _ if name.len() > 2 && name.ends_with("Id") => FieldType::Reference,
        _ if name.len() > 2
            && name.starts_with("Is")
            && name[2..].starts_with(|c: char| c.is_ascii_uppercase()) =>
        {
            FieldType::Boolean
        }
        _ => return None,
    };
    Some(t)
}
