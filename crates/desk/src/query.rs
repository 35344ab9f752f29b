//! Runs the SOQL subset of the `soql` crate against the desk's records: names checked against the
//! schema, literals typed by their field, then a filtered scan (or a direct read for `Id = '...'`).
//!
//! Comparisons follow SOQL: text compares case-insensitively, ids by their 15-character form, and null
//! is a value (`Subject != 'x'` also matches records without a subject; `= null` finds them).

use std::cmp::Ordering;

use model::{FieldDef, FieldType, FieldValue, ObjectSchema, Record, SchemaError, SfId};
use soql::{Literal, Op};

use crate::{Desk, DeskError};

/// Records a query selected, with the fields to show for each, in the query's order.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The object's API name.
    pub object: String,
    /// The selected fields, schema spelling, each once.
    pub fields: Vec<String>,
    pub records: Vec<Record>,
}

/// How many records a scan reads from storage at a time.
const PAGE: usize = 500;

struct Filter<'s> {
    def: &'s FieldDef,
    op: Op,
    value: Option<FieldValue>,
}

fn invalid(code: &str, message: String) -> DeskError {
    DeskError::Invalid(vec![SchemaError::new(code, message, &[])])
}

impl Desk {
    /// Runs a query of the supported subset (see the `soql` crate).
    pub async fn query(&self, text: &str) -> Result<QueryResult, DeskError> {
        let query =
            soql::parse(text).map_err(|e| invalid("MALFORMED_QUERY", e.salesforce_message()))?;
        let schema = self.catalog.find_schema(&query.object).ok_or_else(|| {
            invalid(
                "INVALID_TYPE",
                format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.",
                    query.object
                ),
            )
        })?;
        let mut fields: Vec<String> = Vec::with_capacity(query.fields.len());
        for name in &query.fields {
            let def = column(schema, name)?;
            if !fields.contains(&def.name) {
                fields.push(def.name.clone());
            }
        }
        let filters = query
            .conditions
            .iter()
            .map(|c| filter(schema, c))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = query
            .limit
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut records = Vec::new();
        if limit == 0 {
            return Ok(QueryResult {
                object: schema.name.clone(),
                fields,
                records,
            });
        }
        let by_id = filters
            .iter()
            .find_map(|f| match (f.def.name.as_str(), f.op, &f.value) {
                ("Id", Op::Eq, Some(FieldValue::Text(id))) => Some(id.clone()),
                _ => None,
            });
        if let Some(id) = by_id {
            // The common lookup: one read instead of a scan.
            if let Some(row) = self.store.get_record(&schema.name, &id).await?
                && !row.deleted
                && let Some(record) = self.catalog.decode_record(&row)
                && filters.iter().all(|f| f.matches(&record))
            {
                records.push(record);
            }
        } else {
            let mut after: Option<String> = None;
            'scan: loop {
                let rows = self
                    .store
                    .list_records(&schema.name, after.as_deref(), PAGE)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id.clone());
                let full = rows.len() == PAGE;
                for row in &rows {
                    let Some(record) = self.catalog.decode_record(row) else {
                        continue;
                    };
                    if filters.iter().all(|f| f.matches(&record)) {
                        records.push(record);
                        if records.len() >= limit {
                            break 'scan;
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(QueryResult {
            object: schema.name.clone(),
            fields,
            records,
        })
    }
}

fn column<'s>(schema: &'s ObjectSchema, name: &str) -> Result<&'s FieldDef, DeskError> {
    schema.field_ci(name).ok_or_else(|| {
        DeskError::Invalid(vec![SchemaError::new(
            "INVALID_FIELD",
            format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
                schema.name
            ),
            &[name],
        )])
    })
}

fn filter<'s>(schema: &'s ObjectSchema, c: &soql::Condition) -> Result<Filter<'s>, DeskError> {
    let def = column(schema, &c.field)?;
    let name = def.name.as_str();
    let operator_error = |message: String| {
        DeskError::Invalid(vec![SchemaError::new(
            "INVALID_QUERY_FILTER_OPERATOR",
            message,
            &[name],
        )])
    };
    let wrong_type = |what: &str| {
        operator_error(format!(
            "value of filter criterion for field '{name}' must be of type {what} and should not be enclosed in quotes"
        ))
    };
    let ordered = !matches!(c.op, Op::Eq | Op::Ne);
    if ordered
        && matches!(
            def.ftype,
            FieldType::Boolean | FieldType::Multipicklist | FieldType::Textarea
        )
    {
        return Err(operator_error(format!(
            "invalid operator {} on {} field '{name}'",
            c.op.as_str(),
            def.ftype.name()
        )));
    }
    let value = match (&c.value, def.ftype) {
        (Literal::Null, _) if ordered => {
            return Err(operator_error(format!(
                "null can only be compared with = or != (field '{name}')"
            )));
        }
        (Literal::Null, _) => None,
        (Literal::Text(text), FieldType::Id | FieldType::Reference) => {
            let id = SfId::parse(text)
                .map_err(|_| operator_error(format!("invalid ID field: {text}")))?;
            Some(FieldValue::Text(id.as_str().to_owned()))
        }
        (Literal::Text(text), FieldType::Multipicklist) => Some(FieldValue::MultiPicklist(
            text.split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        (
            Literal::Text(text),
            FieldType::String
            | FieldType::Textarea
            | FieldType::Picklist
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url,
        ) => Some(FieldValue::Text(text.clone())),
        (Literal::Bool(b), FieldType::Boolean) => Some(FieldValue::Bool(*b)),
        (Literal::Number(n), FieldType::Int) => {
            Some(FieldValue::Int(n.parse().map_err(|_| wrong_type("int"))?))
        }
        (Literal::Number(n), FieldType::Double | FieldType::Currency | FieldType::Percent) => Some(
            FieldValue::Double(n.parse().map_err(|_| wrong_type("double"))?),
        ),
        (Literal::Date(d), FieldType::Date) => Some(
            FieldValue::parse_wire(name, FieldType::Date, d)
                .map_err(|e| wrong_type(&e.to_string()))?,
        ),
        (Literal::DateTime(d), FieldType::Datetime) => Some(
            FieldValue::parse_wire(name, FieldType::Datetime, d)
                .map_err(|e| wrong_type(&e.to_string()))?,
        ),
        (_, ftype) => {
            let what = match ftype {
                FieldType::Boolean => "boolean",
                FieldType::Int => "int",
                FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
                FieldType::Date => "date",
                FieldType::Datetime => "dateTime",
                _ => "string",
            };
            return Err(if what == "string" {
                operator_error(format!(
                    "value of filter criterion for field '{name}' must be of type string and should be enclosed in quotes"
                ))
            } else {
                wrong_type(what)
            });
        }
    };
    Ok(Filter {
        def,
        op: c.op,
        value,
    })
}

impl Filter<'_> {
    fn matches(&self, record: &Record) -> bool {
        let have = record.get(&self.def.name);
        let ids = matches!(self.def.ftype, FieldType::Id | FieldType::Reference);
        match self.op {
            Op::Eq => equal(ids, have, self.value.as_ref()),
            Op::Ne => !equal(ids, have, self.value.as_ref()),
            op => {
                let (Some(have), Some(want)) = (have, self.value.as_ref()) else {
                    return false;
                };
                let Some(order) = compare(ids, have, want) else {
                    return false;
                };
                match op {
                    Op::Lt => order == Ordering::Less,
                    Op::Le => order != Ordering::Greater,
                    Op::Gt => order == Ordering::Greater,
                    _ => order != Ordering::Less,
                }
            }
        }
    }
}

fn equal(ids: bool, have: Option<&FieldValue>, want: Option<&FieldValue>) -> bool {
    match (have, want) {
        (None, None) => true,
        (Some(FieldValue::MultiPicklist(a)), Some(FieldValue::MultiPicklist(b))) => {
            let norm = |v: &Vec<String>| {
                let mut v: Vec<String> = v.iter().map(|s| s.to_lowercase()).collect();
                v.sort();
                v.dedup();
                v
            };
            norm(a) == norm(b)
        }
        (Some(a), Some(b)) => compare(ids, a, b) == Some(Ordering::Equal),
        _ => false,
    }
}

/// `ids`: the field holds record ids, which compare by their case-sensitive 15-character form; other
/// text compares case-insensitively.
fn compare(ids: bool, a: &FieldValue, b: &FieldValue) -> Option<Ordering> {
    match (a, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => match (ids, SfId::parse(x), SfId::parse(y)) {
            (true, Ok(p), Ok(q)) => Some(p.id15().cmp(q.id15())),
            _ => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        },
        (FieldValue::Bool(x), FieldValue::Bool(y)) => Some(x.cmp(y)),
        (FieldValue::Int(x), FieldValue::Int(y)) => Some(x.cmp(y)),
        (FieldValue::Double(x), FieldValue::Double(y)) => x.partial_cmp(y),
        (FieldValue::Int(x), FieldValue::Double(y)) => (*x as f64).partial_cmp(y),
        (FieldValue::Double(x), FieldValue::Int(y)) => x.partial_cmp(&(*y as f64)),
        (FieldValue::Date(x), FieldValue::Date(y)) => Some(x.cmp(y)),
        (FieldValue::DateTime(x), FieldValue::DateTime(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
