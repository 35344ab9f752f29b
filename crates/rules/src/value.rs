//! Runtime values as rules see them, and reading them from records.

use chrono::{DateTime, NaiveDate, Utc};
use model::{FieldType, FieldValue, Record};

/// A value during evaluation. `Null` is an absent field (or a missing related record).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Text(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Multi(Vec<String>),
}

/// Evaluation could not proceed (a cross-object value of an unexpected type, a bad value for a field
/// whose type is only known at run time). The rule then does not fire: never a guessed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvalError(pub String);

pub(crate) type EvalResult<T> = Result<T, EvalError>;

impl Val {
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Text(_) => "text",
            Val::Num(_) => "number",
            Val::Bool(_) => "boolean",
            Val::Date(_) => "date",
            Val::DateTime(_) => "date/time",
            Val::Multi(_) => "multi-select picklist",
        }
    }

    pub fn from_field(value: &FieldValue) -> Val {
        match value {
            FieldValue::Text(s) => Val::Text(s.clone()),
            FieldValue::Bool(b) => Val::Bool(*b),
            FieldValue::Int(i) => Val::Num(*i as f64),
            FieldValue::Double(d) => Val::Num(*d),
            FieldValue::Date(d) => Val::Date(*d),
            FieldValue::DateTime(t) => Val::DateTime(*t),
            FieldValue::MultiPicklist(v) => Val::Multi(v.clone()),
        }
    }

    /// Salesforce's notion of blank: null, empty text, no selected values.
    pub fn is_blank(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Text(s) => s.is_empty(),
            Val::Multi(v) => v.is_empty(),
            _ => false,
        }
    }
}

/// Finds a field by API name. Salesforce API names are case-insensitive, and a record built by another
/// crate may spell a name differently from the rule, so the exact spelling is only tried first.
pub(crate) fn lookup<'r>(record: &'r Record, name: &str) -> Option<&'r FieldValue> {
    record.get(name).or_else(|| {
        record
            .fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Reads a field whose type the schema declares (`None`: type only known at run time).
pub(crate) fn read(record: &Record, name: &str, ftype: Option<FieldType>) -> EvalResult<Val> {
    let Some(value) = lookup(record, name) else {
        // A checkbox is never null in Salesforce: an absent one reads as false.
        return Ok(if ftype == Some(FieldType::Boolean) {
            Val::Bool(false)
        } else {
            Val::Null
        });
    };
    let val = Val::from_field(value);
    match (ftype, &val) {
        // Records validated elsewhere hold the right variant; text in a typed field (say, from a lenient
        // import) is read in the field's canonical form, and anything else is refused rather than guessed.
        (Some(t), Val::Text(text)) if !is_textual(t) => FieldValue::parse_wire(name, t, text)
            .map(|v| Val::from_field(&v))
            .map_err(|e| EvalError(e.to_string())),
        _ => Ok(val),
    }
}

/// Field types whose values are text to rules.
pub(crate) fn is_textual(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::Id
            | FieldType::Reference
            | FieldType::String
            | FieldType::Textarea
            | FieldType::Picklist
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
    )
}

/// `TEXT()` of a number: integers without a decimal point, other values in their shortest exact form.
pub(crate) fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}
