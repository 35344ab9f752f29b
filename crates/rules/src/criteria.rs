//! Criteria items (`field`, `operation`, `value`) and their `booleanFilter`.
//!
//! Semantics follow Salesforce's filter criteria: text compares case-insensitively, `value` is a
//! comma-separated list of alternatives (double quotes protect a comma), a blank value means "is blank",
//! `notEqual`/`notContain`/`excludes` are the negations of `equals`/`contains`/`includes`, and ordering
//! against a null field is false.

use chrono::{DateTime, NaiveDate, Utc};
use model::{CriteriaItem, FieldType, Record, SfId};

use crate::Related;
use crate::filter::{self, Filter};
use crate::path::{FieldRef, ResolveError, Scope};
use crate::value::{EvalError, EvalResult, Val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEqual,
    LessThan,
    GreaterThan,
    LessOrEqual,
    GreaterOrEqual,
    Contains,
    NotContain,
    StartsWith,
    Includes,
    Excludes,
}

impl Op {
    fn parse(s: &str) -> Result<Op, String> {
        Ok(match s {
            "equals" => Op::Equals,
            "notEqual" => Op::NotEqual,
            "lessThan" => Op::LessThan,
            "greaterThan" => Op::GreaterThan,
            "lessOrEqual" => Op::LessOrEqual,
            "greaterOrEqual" => Op::GreaterOrEqual,
            "contains" => Op::Contains,
            "notContain" => Op::NotContain,
            "startsWith" => Op::StartsWith,
            "includes" => Op::Includes,
            "excludes" => Op::Excludes,
            "within" => {
                return Err(
                    "the operation `within` (distance between geolocations) is not supported"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown operation {other:?}")),
        })
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            Op::LessThan | Op::GreaterThan | Op::LessOrEqual | Op::GreaterOrEqual
        )
    }

    /// The positive form and whether the result is negated.
    fn positive(self) -> (Op, bool) {
        match self {
            Op::NotEqual => (Op::Equals, true),
            Op::NotContain => (Op::Contains, true),
            Op::Excludes => (Op::Includes, true),
            op => (op, false),
        }
    }
}

/// How values compare, from the field type (or, for cross-object fields, from the run-time value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text of any kind; `ordered` is false for picklists, whose order lives in the picklist definition.
    Text {
        ordered: bool,
    },
    Id,
    Number,
    Bool,
    Date,
    DateTime,
    Multi,
}

impl Kind {
    fn of(t: FieldType) -> Kind {
        match t {
            FieldType::Id | FieldType::Reference => Kind::Id,
            FieldType::Picklist => Kind::Text { ordered: false },
            FieldType::String
            | FieldType::Textarea
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url => Kind::Text { ordered: true },
            FieldType::Multipicklist => Kind::Multi,
            FieldType::Boolean => Kind::Bool,
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                Kind::Number
            }
            FieldType::Date => Kind::Date,
            FieldType::Datetime => Kind::DateTime,
        }
    }

    fn check_op(self, op: Op) -> Result<(), String> {
        let ok = match self {
            Kind::Text { ordered } => {
                !matches!(op, Op::Includes | Op::Excludes) && (ordered || !op.is_ordering())
            }
            Kind::Id | Kind::Bool => matches!(op, Op::Equals | Op::NotEqual),
            Kind::Number | Kind::Date | Kind::DateTime => {
                matches!(op, Op::Equals | Op::NotEqual) || op.is_ordering()
            }
            Kind::Multi => matches!(op, Op::Equals | Op::NotEqual | Op::Includes | Op::Excludes),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Kind::Text { ordered: false } if op.is_ordering() => {
                "ordering a picklist compares positions in the picklist definition, which the schema does not carry"
                    .to_owned()
            }
            _ => format!("{op:?} does not apply to a {} field", self.name()),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Text { ordered: true } => "text",
            Kind::Text { ordered: false } => "picklist",
            Kind::Id => "lookup/id",
            Kind::Number => "number",
            Kind::Bool => "checkbox",
            Kind::Date => "date",
            Kind::DateTime => "date/time",
            Kind::Multi => "multi-select picklist",
        }
    }
}

/// One alternative of the `value` list, parsed for a kind.
#[derive(Debug, Clone, PartialEq)]
enum Alt {
    Blank,
    /// Lower-cased.
    Text(String),
    Id(SfId),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// Lower-cased, sorted, deduplicated: "A;B" means both.
    Set(Vec<String>),
}

fn parse_alts(kind: Kind, op: Op, raw: &[Option<String>]) -> Result<Vec<Alt>, String> {
    let (positive, _) = op.positive();
    let blanks = raw.iter().filter(|v| v.is_none()).count();
    if blanks > 0 && positive != Op::Equals {
        return Err(format!("{op:?} needs a value"));
    }
    if op.is_ordering() && raw.len() != 1 {
        return Err(format!("{op:?} takes a single value, not a list"));
    }
    raw.iter()
        .map(|v| {
            let Some(text) = v else { return Ok(Alt::Blank) };
            parse_alt(kind, text)
        })
        .collect()
}

fn parse_alt(kind: Kind, text: &str) -> Result<Alt, String> {
    Ok(match kind {
        Kind::Text { .. } => Alt::Text(text.to_lowercase()),
        Kind::Id => Alt::Id(SfId::parse(text).map_err(|_| {
            format!(
                "{text:?} is not a record id; Salesforce compares lookup criteria with the referenced record's name \
                 (or record type label), which casewire cannot resolve"
            )
        })?),
        Kind::Number => Alt::Num(
            model::value::parse_xsd_double(text)
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("{text:?} is not a number"))?,
        ),
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Alt::Bool(true),
            "false" | "0" => Alt::Bool(false),
            _ => return Err(format!("{text:?} is not True or False")),
        },
        Kind::Date => Alt::Date(parse_date(text).ok_or_else(|| {
            format!("{text:?} is not a date (YYYY-MM-DD or M/D/YYYY; relative dates are not supported)")
        })?),
        Kind::DateTime => Alt::DateTime(
            model::value::parse_datetime(text)
                .ok_or_else(|| format!("{text:?} is not a date/time (YYYY-MM-DDThh:mm:ssZ)"))?,
        ),
        Kind::Multi => Alt::Set(normalize_set(text.split(';'))),
    })
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%m/%d/%Y"))
        .ok()
}

fn normalize_set<'s>(values: impl Iterator<Item = &'s str>) -> Vec<String> {
    let mut set: Vec<String> = values
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    set.sort();
    set.dedup();
    set
}

/// Splits a criteria `value` into alternatives: commas separate, double quotes protect, surrounding
/// spaces go. `None` stands for a blank alternative; a blank or missing value is one blank alternative.
fn split_values(value: Option<&str>) -> Vec<Option<String>> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return vec![None];
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Item {
    target: FieldRef,
    op: Op,
    /// Parsed alternatives when the field type is known at compile time.
    typed: Option<(Kind, Vec<Alt>)>,
    /// The raw alternatives, parsed at run time for fields whose type only the value tells.
    raw: Vec<Option<String>>,
}

/// Compiled criteria items with their optional filter. No items means "always true", as in Salesforce
/// when a rule specifies no criteria.
#[derive(Debug, Clone)]
pub(crate) struct Items {
    items: Vec<Item>,
    filter: Option<Filter>,
}

/// Why criteria items did not compile; mapped to [`crate::RuleError`] by the caller, who knows the rule.
pub(crate) enum ItemsError {
    Unknown {
        field: String,
    },
    Item {
        item: usize,
        field: String,
        message: String,
    },
    Filter {
        pos: crate::error::Pos,
        message: String,
    },
}

pub(crate) fn compile(
    scope: Scope<'_>,
    items: &[CriteriaItem],
    filter: Option<&str>,
) -> Result<Items, ItemsError> {
    let mut compiled = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let fail = |message: String| ItemsError::Item {
            item: i + 1,
            field: item.field.clone(),
            message,
        };
        let target = match resolve(scope, item.field.trim()) {
            Ok(t) => t,
            Err(ResolveError::Unknown(field)) => return Err(ItemsError::Unknown { field }),
            Err(ResolveError::Unsupported(message)) => return Err(fail(message)),
        };
        let op = Op::parse(item.operation.trim()).map_err(fail)?;
        let raw = split_values(item.value.as_deref());
        let typed = match target.ftype() {
            Some(t) => {
                let kind = Kind::of(t);
                kind.check_op(op).map_err(fail)?;
                Some((kind, parse_alts(kind, op, &raw).map_err(fail)?))
            }
            None => {
                // The kind is only known from the value, but malformed lists are malformed for every kind.
                parse_alts(Kind::Text { ordered: true }, op, &raw).map_err(fail)?;
                None
            }
        };
        compiled.push(Item {
            target,
            op,
            typed,
            raw,
        });
    }
    let filter = match filter.map(str::trim).filter(|f| !f.is_empty()) {
        Some(text) => Some(
            filter::parse(text, compiled.len())
                .map_err(|(pos, message)| ItemsError::Filter { pos, message })?,
        ),
        None => None,
    };
    Ok(Items {
        items: compiled,
        filter,
    })
}

/// `Status`, `Case.Status`, `Case.Account.Name`, `Account.Name`.
fn resolve(scope: Scope<'_>, field: &str) -> Result<FieldRef, ResolveError> {
    let parts: Vec<&str> = field.split('.').collect();
    let is_object = |s: &str| s.eq_ignore_ascii_case(scope.object);
    match parts.as_slice() {
        [name] => scope.own(name),
        [obj, name] if is_object(obj) => scope.own(name),
        [global, _] if global.starts_with('$') => Err(ResolveError::Unsupported(format!(
            "the global {field} is not supported"
        ))),
        // In criteria, `User.` names the user who makes the change, not a lookup.
        [user, _] if user.eq_ignore_ascii_case("User") => Err(ResolveError::Unsupported(format!(
            "criteria on the current user's fields ({field}) are not supported"
        ))),
        [rel, name] => scope.lookup(rel, name),
        [obj, rel, name] if is_object(obj) => scope.lookup(rel, name),
        _ => Err(ResolveError::Unsupported(format!(
            "{field}: references through more than one lookup are not supported"
        ))),
    }
}

impl Items {
    pub fn eval(&self, record: &Record, related: &dyn Related) -> EvalResult<bool> {
        let mut item = |i: usize| match self.items.get(i) {
            Some(item) => item.eval(record, related),
            None => Err(EvalError(format!("no criteria item {}", i + 1))),
        };
        match &self.filter {
            Some(filter) => filter.eval(&mut item),
            None => {
                for i in 0..self.items.len() {
                    if !item(i)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

impl Item {
    fn eval(&self, record: &Record, related: &dyn Related) -> EvalResult<bool> {
        let val = self.target.read(record, related)?;
        let (positive, negate) = self.op.positive();
        let result = match &self.typed {
            Some((kind, alts)) => matches(*kind, positive, alts, &val)?,
            None => match dynamic_kind(&val).map(|k| self.refine(k, &val)) {
                // A null cross-object value compares the same whatever its type.
                None => positive == Op::Equals && self.raw.iter().any(Option::is_none),
                Some(kind) => {
                    if positive.is_ordering() && matches!(kind, Kind::Text { .. }) {
                        return Err(EvalError(format!(
                            "{} holds text of unknown kind (text or picklist); cannot order it",
                            self.target.display()
                        )));
                    }
                    kind.check_op(self.op).map_err(EvalError)?;
                    let alts = parse_alts(kind, self.op, &self.raw).map_err(EvalError)?;
                    matches(kind, positive, &alts, &val)?
                }
            },
        };
        Ok(result != negate)
    }
}

impl Item {
    /// Ids are case-sensitive: a related record's standard id field (`OwnerId`) holding an id compares
    /// as an id, not as case-insensitive text.
    fn refine(&self, kind: Kind, val: &Val) -> Kind {
        let FieldRef::Lookup { field, .. } = &self.target else {
            return kind;
        };
        let id_field = field == "Id" || (field.ends_with("Id") && !field.contains("__"));
        match val {
            Val::Text(s) if id_field && SfId::parse(s.trim()).is_ok() => Kind::Id,
            _ => kind,
        }
    }
}

/// The comparison kind a run-time value implies, `None` for null.
fn dynamic_kind(val: &Val) -> Option<Kind> {
    Some(match val {
        Val::Null => return None,
        Val::Text(_) => Kind::Text { ordered: true },
        Val::Num(_) => Kind::Number,
        Val::Bool(_) => Kind::Bool,
        Val::Date(_) => Kind::Date,
        Val::DateTime(_) => Kind::DateTime,
        Val::Multi(_) => Kind::Multi,
    })
}

/// Does `val` satisfy the positive operation `op` against any of `alts`?
fn matches(kind: Kind, op: Op, alts: &[Alt], val: &Val) -> EvalResult<bool> {
    let mismatch = || {
        EvalError(format!(
            "a {} value in a {} criteria item",
            val.kind(),
            kind.name()
        ))
    };
    if matches!(val, Val::Null) {
        // Only `equals (blank)` holds for null: comparisons with null are false.
        return Ok(op == Op::Equals && alts.contains(&Alt::Blank));
    }
    Ok(match (kind, val) {
        (Kind::Text { .. }, Val::Text(s)) => {
            let s = s.to_lowercase();
            alts.iter().any(|alt| match alt {
                Alt::Blank => s.is_empty(),
                Alt::Text(a) => match op {
                    Op::Equals => s == *a,
                    Op::Contains => s.contains(a.as_str()),
                    Op::StartsWith => s.starts_with(a.as_str()),
                    Op::LessThan => s < *a,
                    Op::GreaterThan => s > *a,
                    Op::LessOrEqual => s <= *a,
                    Op::GreaterOrEqual => s >= *a,
                    _ => false,
                },
                _ => false,
            })
        }
        (Kind::Id, Val::Text(s)) => {
            let id = SfId::parse(s.trim()).ok();
            alts.iter().any(|alt| match alt {
                Alt::Blank => s.is_empty(),
                Alt::Id(a) => id.as_ref().is_some_and(|id| id.same_record(a)),
                _ => false,
            })
        }
        (Kind::Number, Val::Num(n)) => alts.iter().any(|alt| match alt {
            Alt::Num(a) => ordered(op, n.partial_cmp(a)),
            _ => false,
        }),
        (Kind::Bool, Val::Bool(b)) => alts.contains(&Alt::Bool(*b)),
        (Kind::Date, Val::Date(d)) => alts.iter().any(|alt| match alt {
            Alt::Date(a) => ordered(op, Some(d.cmp(a))),
            _ => false,
        }),
        (Kind::DateTime, Val::DateTime(t)) => alts.iter().any(|alt| match alt {
            Alt::DateTime(a) => ordered(op, Some(t.cmp(a))),
            _ => false,
        }),
        (Kind::Multi, Val::Multi(values)) => {
            let have = normalize_set(values.iter().map(String::as_str));
            alts.iter().any(|alt| match alt {
                Alt::Blank => have.is_empty(),
                Alt::Set(want) => match op {
                    Op::Equals => have == *want,
                    Op::Includes => want.iter().all(|w| have.contains(w)),
                    _ => false,
                },
                _ => false,
            })
        }
        _ => return Err(mismatch()),
    })
}

fn ordered(op: Op, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, ord) {
        (_, None) => false,
        (Op::Equals, Some(o)) => o == Equal,
        (Op::LessThan, Some(o)) => o == Less,
        (Op::GreaterThan, Some(o)) => o == Greater,
        (Op::LessOrEqual, Some(o)) => o != Greater,
        (Op::GreaterOrEqual, Some(o)) => o != Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_lists_split_on_commas_outside_quotes() {
        assert_eq!(split_values(None), vec![None]);
        assert_eq!(split_values(Some("  ")), vec![None]);
        assert_eq!(
            split_values(Some("Qualified Lead,Unqualified Lead")),
            vec![
                Some("Qualified Lead".to_owned()),
                Some("Unqualified Lead".to_owned())
            ]
        );
        assert_eq!(
            split_values(Some("\"Smith, John\", Doe,")),
            vec![Some("Smith, John".to_owned()), Some("Doe".to_owned()), None]
        );
    }
}
