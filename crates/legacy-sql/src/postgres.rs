//! A legacy PostgreSQL database as the target (`postgres://` or `postgresql://` URL).
//!
//! Per batch: one transaction; per notification a savepoint holding its ledger check, its statements
//! and its ledger insert, so one bad notification does not undo the others and each one's effect and
//! its ledger row commit together. A transaction-scoped advisory lock per record keeps two casewire
//! processes applying to the same database from interleaving a record's versions.
//!
//! Values are bound by the type PostgreSQL infers for each placeholder: a `timestamp` conversion
//! binds a `timestamptz`, `timestamp` or `date` column as such, a `boolean` one binds `boolean`, numbers
//! bind `smallint`/`integer`/`bigint`/`real`/`double precision`/`numeric`, and any value binds a text
//! column as its text. For other column types, cast in the statement: `:Field::text::jsonb`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use inbox::{Adapter, ApplyError, Pending};
use store::ApplyOutcome;
use tokio::sync::Mutex;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use crate::params::{Rewritten, rewrite_named};
use crate::{Conversion, SqlAdapterConfig, SqlAdapterError, SqlValue, convert};

const LEDGER_DDL: &str = "
    CREATE TABLE IF NOT EXISTS casewire_ledger (
        notification_id text PRIMARY KEY,
        object_type     text NOT NULL,
        record_id       text,
        version         bigint,
        applied_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX IF NOT EXISTS casewire_ledger_record ON casewire_ledger(object_type, record_id, version);
";

struct Connected {
    client: Client,
    statements: Vec<Statement>,
}

pub struct PostgresTarget {
    url: String,
    setup: Vec<String>,
    statements: Vec<Rewritten>,
    convert: std::collections::BTreeMap<String, Conversion>,
    empty_as_null: bool,
    conn: Arc<Mutex<Option<Connected>>>,
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl PostgresTarget {
    /// Connects, runs the setup statements, creates the ledger table and prepares every statement, so
    /// that mistakes show at start. If the database cannot be reached now, the adapter still starts
    /// (notifications are stored and wait) and connects on its first apply; a log line says so.
    pub async fn open(config: &SqlAdapterConfig) -> Result<Self, SqlAdapterError> {
        if config.statements.is_empty() {
            return Err(SqlAdapterError::NoStatements);
        }
        let statements = config
            .statements
            .iter()
            .enumerate()
            .map(|(i, sql)| {
                rewrite_named(sql).map_err(|message| SqlAdapterError::Statement {
                    index: i + 1,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target = Self {
            url: config.target.clone(),
            setup: config.setup.clone(),
            statements,
            convert: config.convert.clone(),
            empty_as_null: config.empty_as_null,
            conn: Arc::new(Mutex::new(None)),
        };
        match target.connect().await {
            Ok(connected) => *target.conn.lock().await = Some(connected),
            Err(Failure::Unreachable(message)) => tracing::warn!(
                target = %redacted(&target.url),
                "the legacy PostgreSQL database cannot be reached now; notifications wait until it can: {message}"
            ),
            Err(Failure::Config(e)) => return Err(e),
        }
        Ok(target)
    }

    async fn connect(&self) -> Result<Connected, Failure> {
        let (client, connection) =
            tokio_postgres::connect(&self.url, NoTls)
                .await
                .map_err(|e| {
                    if e.as_db_error().is_some() {
                        // Reached the server, which refused (unknown database, authentication).
                        Failure::Config(SqlAdapterError::Open {
                            target: redacted(&self.url),
                            message: e.to_string(),
                        })
                    } else {
                        Failure::Unreachable(e.to_string())
                    }
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("legacy PostgreSQL connection ended: {e}");
            }
        });
        for (i, sql) in self.setup.iter().enumerate() {
            client.batch_execute(sql).await.map_err(|e| {
                setup_failure(e, |message| SqlAdapterError::Setup {
                    index: i + 1,
                    message,
                })
            })?;
        }
        client.batch_execute(LEDGER_DDL).await.map_err(|e| {
            setup_failure(e, |message| SqlAdapterError::Open {
                target: redacted(&self.url),
                message: format!("cannot create casewire_ledger: {message}"),
            })
        })?;
        let mut statements = Vec::with_capacity(self.statements.len());
        for (i, s) in self.statements.iter().enumerate() {
            statements.push(client.prepare(&s.sql).await.map_err(|e| {
                setup_failure(e, |message| SqlAdapterError::Statement {
                    index: i + 1,
                    message,
                })
            })?);
        }
        Ok(Connected { client, statements })
    }

    async fn apply_batch(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        let all = |e: ApplyError| batch.iter().map(|_| Err(e.clone())).collect();
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            match self.connect().await {
                Ok(c) => *guard = Some(c),
                Err(Failure::Unreachable(m)) => {
                    return all(ApplyError::retry(format!(
                        "legacy database unreachable: {m}"
                    )));
                }
                // The schema changed under us (a table dropped): an operator must act.
                Err(Failure::Config(e)) => return all(ApplyError::permanent(e.to_string())),
            }
        }
        let Some(connected) = guard.as_mut() else {
            return all(ApplyError::retry("legacy database unreachable"));
        };
        let statements = connected.statements.clone();
        let mut tx = match connected.client.transaction().await {
            Ok(tx) => tx,
            Err(e) => return all(classify(&e)),
        };
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            let result = match tx.savepoint("notification").await {
                Err(e) => Err(classify(&e)),
                Ok(mut sp) => match self.apply_one(&mut sp, &statements, p).await {
                    Ok(outcome) => sp
                        .commit()
                        .await
                        .map(|()| outcome)
                        .map_err(|e| classify(&e)),
                    Err(e) => {
                        let _ = sp.rollback().await;
                        Err(e)
                    }
                },
            };
            results.push(result);
        }
        if let Err(e) = tx.commit().await {
            return all(classify(&e));
        }
        results
    }

    async fn apply_one(
        &self,
        tx: &mut tokio_postgres::Transaction<'_>,
        statements: &[Statement],
        p: &Pending,
    ) -> Result<ApplyOutcome, ApplyError> {
        let record_key = format!("{}:{}", p.object_type, p.record_id.as_deref().unwrap_or(""));
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&record_key],
        )
        .await
        .map_err(|e| classify(&e))?;
        let already = tx
            .query_opt(
                "SELECT 1 FROM casewire_ledger WHERE notification_id = $1",
                &[&p.id],
            )
            .await
            .map_err(|e| classify(&e))?;
        if already.is_some() {
            // Applied by an earlier attempt whose bookkeeping in the inbox did not survive.
            return Ok(ApplyOutcome::Applied);
        }
        if let Some(version) = p.version {
            let row = tx
                .query_one(
                    "SELECT max(version) FROM casewire_ledger
                     WHERE object_type = $1 AND record_id IS NOT DISTINCT FROM $2",
                    &[&p.object_type, &p.record_id],
                )
                .await
                .map_err(|e| classify(&e))?;
            let newest: Option<i64> = row.get(0);
            if let Some(newest) = newest.filter(|n| *n > version) {
                record_ledger(tx, p).await?;
                return Ok(ApplyOutcome::Stale(inbox::stale_reason(version, newest)));
            }
        }
        for (statement, rewritten) in statements.iter().zip(&self.statements) {
            let mut bound: Vec<Bound> = Vec::with_capacity(rewritten.names.len());
            for (name, ty) in rewritten.names.iter().zip(statement.params()) {
                let value = self.value_for(p, name)?;
                bound.push(bind(name, value, ty).map_err(ApplyError::permanent)?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> =
                bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
            tx.execute(statement, &refs)
                .await
                .map_err(|e| classify(&e))?;
        }
        record_ledger(tx, p).await?;
        Ok(ApplyOutcome::Applied)
    }

    fn value_for(&self, p: &Pending, name: &str) -> Result<SqlValue, ApplyError> {
        let text = match name {
            "notification_id" => Some(p.id.as_str()),
            "organization_id" => Some(p.organization_id.as_str()),
            "action_id" => Some(p.action_id.as_str()),
            "object_type" => Some(p.object_type.as_str()),
            "record_id" => p.record_id.as_deref(),
            field => p.field(field),
        };
        let conversion = self.convert.get(name).copied().unwrap_or_default();
        convert(name, text, conversion, self.empty_as_null).map_err(ApplyError::permanent)
    }
}

enum Failure {
    Unreachable(String),
    Config(SqlAdapterError),
}

/// A failure while connecting and preparing: the server's refusal is a configuration error to report
/// at start; anything else means it could not be reached.
fn setup_failure(
    e: tokio_postgres::Error,
    config: impl FnOnce(String) -> SqlAdapterError,
) -> Failure {
    match e.as_db_error() {
        Some(db) if !is_transient(db.code().code()) => {
            Failure::Config(config(db.message().to_owned()))
        }
        _ => Failure::Unreachable(e.to_string()),
    }
}

async fn record_ledger(
    tx: &mut tokio_postgres::Transaction<'_>,
    p: &Pending,
) -> Result<(), ApplyError> {
    tx.execute(
        "INSERT INTO casewire_ledger(notification_id, object_type, record_id, version) VALUES ($1, $2, $3, $4)",
        &[&p.id, &p.object_type, &p.record_id, &p.version],
    )
    .await
    .map_err(|e| classify(&e))?;
    Ok(())
}

/// SQLSTATE classes that pass by themselves: connection (08), transaction rollback such as
/// serialization failure or deadlock (40), insufficient resources (53), operator intervention (57),
/// system error (58), lock not available (55P03).
fn is_transient(code: &str) -> bool {
    ["08", "40", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03"
}

/// Errors from the server are permanent unless their SQLSTATE says they pass (a constraint, a type
/// error or a missing table will not fix itself; an operator replays after fixing it). Errors without
/// a server answer are connection trouble, retried.
fn classify(e: &tokio_postgres::Error) -> ApplyError {
    let message = match e.as_db_error() {
        Some(db) => format!(
            "legacy database: {} (SQLSTATE {}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        None => format!("legacy database: {e}"),
    };
    match e.as_db_error() {
        Some(db) if !is_transient(db.code().code()) => ApplyError::permanent(message),
        _ => ApplyError::retry(message),
    }
}

/// A value ready for the wire, in the type PostgreSQL expects for its placeholder.
#[derive(Debug)]
enum Bound {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    TimestampTz(DateTime<Utc>),
    Timestamp(NaiveDateTime),
    Date(NaiveDate),
    /// Already in PostgreSQL's binary `numeric` format.
    Numeric(Vec<u8>),
}

impl ToSql for Bound {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Bound::Null => Ok(IsNull::Yes),
            Bound::Bool(v) => v.to_sql(ty, out),
            Bound::I16(v) => v.to_sql(ty, out),
            Bound::I32(v) => v.to_sql(ty, out),
            Bound::I64(v) => v.to_sql(ty, out),
            Bound::F32(v) => v.to_sql(ty, out),
            Bound::F64(v) => v.to_sql(ty, out),
            Bound::Text(v) => v.as_str().to_sql(ty, out),
            Bound::TimestampTz(v) => v.to_sql(ty, out),
            Bound::Timestamp(v) => v.to_sql(ty, out),
            Bound::Date(v) => v.to_sql(ty, out),
            Bound::Numeric(bytes) => {
                out.put_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // `bind` produced the variant for the placeholder's type.
        true
    }

    to_sql_checked!();
}

fn text_of(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => String::new(),
        SqlValue::Text(s) => s.clone(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(f) => f.to_string(),
        SqlValue::Bool(b) => b.to_string(),
        SqlValue::Timestamp(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// Turns a converted value into what the placeholder's type takes, or says why it cannot.
fn bind(name: &str, value: SqlValue, ty: &Type) -> Result<Bound, String> {
    if value == SqlValue::Null {
        return Ok(Bound::Null);
    }
    let shown = text_of(&value);
    let bad = || {
        format!(
            "parameter :{name}: {shown:?} cannot be a {ty} (declare a conversion for it, or cast in the statement: :{name}::text::{ty})"
        )
    };
    let as_i64 = || -> Option<i64> {
        match &value {
            SqlValue::Integer(i) => Some(*i),
            SqlValue::Bool(b) => Some(i64::from(*b)),
            SqlValue::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(*f as i64),
            SqlValue::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    };
    let as_f64 = || -> Option<f64> {
        match &value {
            SqlValue::Integer(i) => Some(*i as f64),
            SqlValue::Real(f) => Some(*f),
            SqlValue::Text(t) => model::value::parse_xsd_double(t),
            _ => None,
        }
    };
    let as_time = || -> Option<DateTime<Utc>> {
        match &value {
            SqlValue::Timestamp(t) => Some(*t),
            SqlValue::Text(t) => model::value::parse_datetime(t),
            _ => None,
        }
    };
    Ok(match *ty {
        Type::BOOL => match &value {
            SqlValue::Bool(b) => Bound::Bool(*b),
            SqlValue::Integer(0) => Bound::Bool(false),
            SqlValue::Integer(1) => Bound::Bool(true),
            SqlValue::Text(t) => match t.trim() {
                "true" | "1" => Bound::Bool(true),
                "false" | "0" => Bound::Bool(false),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        },
        Type::INT2 => Bound::I16(
            as_i64()
                .and_then(|i| i16::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        Type::INT4 => Bound::I32(
            as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        Type::INT8 => Bound::I64(as_i64().ok_or_else(bad)?),
        Type::FLOAT4 => Bound::F32(as_f64().ok_or_else(bad)? as f32),
        Type::FLOAT8 => Bound::F64(as_f64().ok_or_else(bad)?),
        Type::NUMERIC => {
            let text = match &value {
                SqlValue::Real(f) if !f.is_finite() => return Err(bad()),
                SqlValue::Text(t) if t.contains(['e', 'E']) => {
                    let f = model::value::parse_xsd_double(t).ok_or_else(bad)?;
                    if !f.is_finite() {
                        return Err(bad());
                    }
                    f.to_string()
                }
                SqlValue::Integer(_) | SqlValue::Real(_) | SqlValue::Text(_) => shown.clone(),
                _ => return Err(bad()),
            };
            Bound::Numeric(encode_numeric(text.trim()).ok_or_else(bad)?)
        }
        Type::TIMESTAMPTZ => Bound::TimestampTz(as_time().ok_or_else(bad)?),
        Type::TIMESTAMP => Bound::Timestamp(as_time().ok_or_else(bad)?.naive_utc()),
        Type::DATE => match &value {
            SqlValue::Timestamp(t) => Bound::Date(t.date_naive()),
            SqlValue::Text(t) => Bound::Date(
                NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                    .ok()
                    .or_else(|| model::value::parse_datetime(t).map(|d| d.date_naive()))
                    .ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Bound::Text(shown)
        }
        _ => return Err(bad()),
    })
}

/// A decimal (`-123.4500`) in PostgreSQL's binary `numeric` format: digit count, weight (in base-10000
/// digits), sign and display scale, then base-10000 digits.
fn encode_numeric(text: &str) -> Option<Vec<u8>> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let dscale = u16::try_from(frac_part.len()).ok()?;
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int_digits: String = "0".repeat(int_pad) + int_part;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let frac_digits: String = frac_part.to_owned() + &"0".repeat(frac_pad);
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
            .collect()
    };
    let int_groups = group(&int_digits);
    let mut digits: Vec<i16> = int_groups.clone();
    digits.extend(group(&frac_digits));
    let mut weight = i32::try_from(int_groups.len()).ok()? - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= i32::try_from(leading).ok()?;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let (weight, sign) = if digits.is_empty() {
        (0, 0x0000u16)
    } else {
        (weight, if negative { 0x4000 } else { 0x0000 })
    };
    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&i16::try_from(digits.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&i16::try_from(weight).ok()?.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    Some(out)
}

#[async_trait]
impl Adapter for PostgresTarget {
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        self.apply_batch(batch).await
    }

    fn tracks_versions(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_encoding() {
        // ndigits, weight, sign, dscale, digits...
        let words = |t: &str| -> Vec<i16> {
            encode_numeric(t)
                .unwrap()
                .chunks(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect()
        };
        assert_eq!(words("150.0"), vec![1, 0, 0, 1, 150]);
        assert_eq!(words("-123.4500"), vec![2, 0, 0x4000, 4, 123, 4500]);
        assert_eq!(words("0.05"), vec![1, -1, 0, 2, 500]);
        assert_eq!(words("12345678"), vec![2, 1, 0, 0, 1234, 5678]);
        assert_eq!(words("0"), vec![0, 0, 0, 0]);
        assert_eq!(words("-0.00"), vec![0, 0, 0, 2]);
        assert_eq!(words("10000"), vec![1, 1, 0, 0, 1]);
        assert!(encode_numeric("1.2.3").is_none());
        assert!(encode_numeric("abc").is_none());
        assert!(encode_numeric("-").is_none());
        assert!(encode_numeric(".").is_none());
    }

    #[test]
    fn binds_by_placeholder_type() {
        let t = model::value::parse_datetime("2024-03-14T09:26:53.000Z").unwrap();
        assert!(matches!(
            bind("a", SqlValue::Timestamp(t), &Type::TIMESTAMPTZ),
            Ok(Bound::TimestampTz(v)) if v == t
        ));
        assert!(matches!(
            bind("a", SqlValue::Timestamp(t), &Type::TEXT),
            Ok(Bound::Text(v)) if v == "2024-03-14T09:26:53.000Z"
        ));
        assert!(matches!(
            bind("a", SqlValue::Text("true".into()), &Type::BOOL),
            Ok(Bound::Bool(true))
        ));
        assert!(matches!(
            bind("a", SqlValue::Real(3.0), &Type::INT4),
            Ok(Bound::I32(3))
        ));
        assert!(matches!(
            bind("a", SqlValue::Null, &Type::JSONB),
            Ok(Bound::Null)
        ));
        let err = bind("Amount", SqlValue::Text("lots".into()), &Type::INT8).unwrap_err();
        assert!(err.contains(":Amount") && err.contains("\"lots\""), "{err}");
        assert!(bind("a", SqlValue::Integer(70000), &Type::INT2).is_err());
        assert!(bind("j", SqlValue::Text("{}".into()), &Type::JSONB).is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/legacy"),
            "postgres://app:***@db:5432/legacy"
        );
        assert_eq!(redacted("postgres://db/legacy"), "postgres://db/legacy");
    }
}
