//! The SQL adapter. Each notification runs the route's statements with named parameters taken from its
//! fields (`:Status`, `:ClosedDate`, ...; an absent field is NULL, as Salesforce omits nulls) plus
//! `:notification_id`, `:organization_id`, `:action_id`, `:object_type` and `:record_id`, and inserts its
//! id into the ledger table `casewire_ledger` **in the same transaction of the legacy database**. The
//! ledger makes a repeat (a redelivery, or a replay after a crash between the legacy commit and the
//! inbox's bookkeeping) a no-op, and its versions make an older notification than the one applied a
//! recorded skip instead of an overwrite.

pub mod inspect;
pub mod params;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use postgres::PostgresTarget;
pub use sqlite::SqliteTarget;

/// How a field's text becomes a SQL value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// As sent.
    #[default]
    Text,
    /// An `xsd:dateTime`, stored as ISO 8601 UTC with milliseconds (SQLite) or `timestamptz` (PostgreSQL).
    Timestamp,
    /// `true`/`false`/`1`/`0`, stored as 1/0 (SQLite) or boolean (PostgreSQL).
    Boolean,
    Integer,
    Real,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlAdapterConfig {
    /// A SQLite file path, or a `postgres://` URL.
    pub target: String,
    /// Statements run for every notification, in order, in one transaction with the ledger insert.
    pub statements: Vec<String>,
    /// Statements run once at start, before the ledger table is created (e.g. `CREATE TABLE IF NOT
    /// EXISTS ...`, or `CREATE SCHEMA` for a schema the URL's `search_path` names).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Conversions per parameter name (field name without the colon); the default is text.
    #[serde(default)]
    pub convert: BTreeMap<String, Conversion>,
    /// An empty field becomes NULL (default true): legacy columns rarely tell "" from NULL.
    #[serde(default = "default_true")]
    pub empty_as_null: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum SqlAdapterError {
    #[error("cannot open the legacy database {target}: {message}")]
    Open { target: String, message: String },
    #[error("setup statement {index} failed: {message}")]
    Setup { index: usize, message: String },
    #[error("statement {index} is not valid SQL for the legacy database: {message}")]
    Statement { index: usize, message: String },
    #[error("no statements configured")]
    NoStatements,
}

/// Names that are not fields of the notification.
pub const META_PARAMETERS: &[&str] = &[
    "notification_id",
    "organization_id",
    "action_id",
    "object_type",
    "record_id",
];

/// A parameter's value before it is bound: typed by its conversion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Null,
    Text(String),
    Integer(i64),
    Real(f64),
    Bool(bool),
    /// Milliseconds since the epoch.
    Timestamp(chrono::DateTime<chrono::Utc>),
}

/// Converts `text` per `conversion`; a value that does not convert is a permanent failure naming the
/// parameter (retrying cannot make it convert).
pub(crate) fn convert(
    name: &str,
    text: Option<&str>,
    conversion: Conversion,
    empty_as_null: bool,
) -> Result<SqlValue, String> {
    let Some(text) = text else {
        return Ok(SqlValue::Null);
    };
    if text.is_empty() && (empty_as_null || conversion != Conversion::Text) {
        return Ok(SqlValue::Null);
    }
    let bad = |what: &str| format!("parameter :{name}: {text:?} is not {what}");
    Ok(match conversion {
        Conversion::Text => SqlValue::Text(text.to_owned()),
        Conversion::Timestamp => SqlValue::Timestamp(
            model::value::parse_datetime(text).ok_or_else(|| bad("a dateTime"))?,
        ),
        Conversion::Boolean => match text.trim() {
            "true" | "1" => SqlValue::Bool(true),
            "false" | "0" => SqlValue::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        Conversion::Integer => {
            SqlValue::Integer(text.trim().parse().map_err(|_| bad("an integer"))?)
        }
        Conversion::Real => {
            SqlValue::Real(model::value::parse_xsd_double(text).ok_or_else(|| bad("a number"))?)
        }
    })
}

/// Whether `target` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

/// Builds the adapter for `config.target`: a `postgres://` URL or a SQLite file path.
pub async fn open(
    config: &SqlAdapterConfig,
) -> Result<std::sync::Arc<dyn inbox::Adapter>, SqlAdapterError> {
    if is_postgres(&config.target) {
        return Ok(std::sync::Arc::new(PostgresTarget::open(config).await?));
    }
    Ok(std::sync::Arc::new(SqliteTarget::open(config)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            convert("a", None, Conversion::Text, true),
            Ok(SqlValue::Null)
        );
        assert_eq!(
            convert("a", Some(""), Conversion::Text, true),
            Ok(SqlValue::Null)
        );
        assert_eq!(
            convert("a", Some(""), Conversion::Text, false),
            Ok(SqlValue::Text(String::new()))
        );
        assert_eq!(
            convert("a", Some(""), Conversion::Integer, false),
            Ok(SqlValue::Null)
        );
        assert_eq!(
            convert("a", Some("1"), Conversion::Boolean, true),
            Ok(SqlValue::Bool(true))
        );
        assert_eq!(
            convert("a", Some("2.5E1"), Conversion::Real, true),
            Ok(SqlValue::Real(25.0))
        );
        assert!(
            convert("Flag", Some("yes"), Conversion::Boolean, true)
                .unwrap_err()
                .contains(":Flag")
        );
        assert!(convert("n", Some("1.5"), Conversion::Integer, true).is_err());
        match convert(
            "t",
            Some("2024-03-14T09:26:53.000Z"),
            Conversion::Timestamp,
            true,
        ) {
            Ok(SqlValue::Timestamp(t)) => assert_eq!(t.timestamp_millis(), 1_710_408_413_000),
            other => panic!("{other:?}"),
        }
    }
}
