//! Evaluation of checked formulas.
//!
//! Null follows Salesforce with "treat blank fields as blanks": blank text is the empty string, a
//! checkbox is never null, and comparisons or arithmetic with any other null value give false / null.

use chrono::{DateTime, Duration, Utc};
use model::Record;

use super::check::{ArithOp, CmpOp, Node, Ty};
use crate::Related;
use crate::value::{EvalError, EvalResult, Val, number_text};

/// What a formula sees: the record state being judged and, for `ISCHANGED`/`PRIORVALUE`, the state before
/// the save (`None` on insert).
pub(crate) struct Ctx<'a> {
    pub record: &'a Record,
    pub prior: Option<&'a Record>,
    pub is_new: bool,
    pub now: DateTime<Utc>,
    pub related: &'a dyn Related,
}

fn mismatch(want: &str, got: &Val) -> EvalError {
    EvalError(format!("expected {want}, found a {} value", got.kind()))
}

fn truthy(v: &Val) -> EvalResult<bool> {
    match v {
        Val::Bool(b) => Ok(*b),
        // A checkbox is never null; a missing related record's checkbox reads false.
        Val::Null => Ok(false),
        other => Err(mismatch("true/false", other)),
    }
}

/// Blank text is the empty string in formulas.
fn text(v: Val) -> EvalResult<String> {
    match v {
        Val::Text(s) => Ok(s),
        Val::Null => Ok(String::new()),
        other => Err(mismatch("text", &other)),
    }
}

impl Node {
    pub fn truth(&self, ctx: &Ctx<'_>) -> EvalResult<bool> {
        truthy(&self.eval(ctx)?)
    }

    pub fn eval(&self, ctx: &Ctx<'_>) -> EvalResult<Val> {
        Ok(match self {
            Node::Const(v) => v.clone(),
            Node::Field(f) => f.read(ctx.record, ctx.related)?,
            Node::Prior(f) => f.read(ctx.prior.unwrap_or(ctx.record), ctx.related)?,
            Node::IsChanged(f) => match ctx.prior {
                Some(old) if !ctx.is_new => {
                    let before = f.read(old, ctx.related)?;
                    let after = f.read(ctx.record, ctx.related)?;
                    Val::Bool(!same(&before, &after))
                }
                _ => Val::Bool(false),
            },
            Node::IsNew => Val::Bool(ctx.is_new),
            Node::Today => Val::Date(ctx.now.date_naive()),
            Node::Now => Val::DateTime(ctx.now),
            Node::Not(n) => Val::Bool(!n.truth(ctx)?),
            Node::And(nodes) => {
                for n in nodes {
                    if !n.truth(ctx)? {
                        return Ok(Val::Bool(false));
                    }
                }
                Val::Bool(true)
            }
            Node::Or(nodes) => {
                for n in nodes {
                    if n.truth(ctx)? {
                        return Ok(Val::Bool(true));
                    }
                }
                Val::Bool(false)
            }
            Node::IsBlank(n) => Val::Bool(n.eval(ctx)?.is_blank()),
            Node::IsNull(n) => Val::Bool(n.eval(ctx)? == Val::Null),
            Node::Cmp { op, kind, l, r } => {
                Val::Bool(compare(*op, *kind, l.eval(ctx)?, r.eval(ctx)?)?)
            }
            Node::Arith { op, l, r } => arith(*op, l.eval(ctx)?, r.eval(ctx)?)?,
            Node::Neg(n) => match n.eval(ctx)? {
                Val::Num(x) => Val::Num(-x),
                Val::Null => Val::Null,
                other => return Err(mismatch("a number", &other)),
            },
            Node::Concat(l, r) => {
                let mut s = text(l.eval(ctx)?)?;
                s.push_str(&text(r.eval(ctx)?)?);
                Val::Text(s)
            }
            Node::If(c, x, y) => {
                if c.truth(ctx)? {
                    x.eval(ctx)?
                } else {
                    y.eval(ctx)?
                }
            }
            Node::Case {
                subject,
                kind,
                arms,
                default,
            } => {
                let s = subject.eval(ctx)?;
                for (value, result) in arms {
                    if compare(CmpOp::Eq, *kind, s.clone(), value.eval(ctx)?)? {
                        return result.eval(ctx);
                    }
                }
                default.eval(ctx)?
            }
            Node::NullValue {
                value,
                substitute,
                text: is_text,
            } => match value.eval(ctx)? {
                Val::Null if *is_text => Val::Text(String::new()),
                Val::Null => substitute.eval(ctx)?,
                v => v,
            },
            Node::BlankValue(value, substitute) => {
                let v = value.eval(ctx)?;
                if v.is_blank() {
                    substitute.eval(ctx)?
                } else {
                    v
                }
            }
            Node::IsPickval(n, literal) => match n.eval(ctx)? {
                Val::Text(s) => Val::Bool(s == *literal),
                Val::Null => Val::Bool(literal.is_empty()),
                other => return Err(mismatch("a picklist value", &other)),
            },
            Node::Includes(n, literal) => match n.eval(ctx)? {
                Val::Multi(values) => Val::Bool(values.iter().any(|v| v == literal)),
                Val::Text(s) => Val::Bool(s.split(';').any(|v| v == literal)),
                Val::Null => Val::Bool(false),
                other => return Err(mismatch("a multi-select picklist value", &other)),
            },
            Node::Text(n) => Val::Text(match n.eval(ctx)? {
                Val::Null => String::new(),
                Val::Text(s) => s,
                Val::Num(x) => number_text(x),
                Val::Date(d) => d.format("%Y-%m-%d").to_string(),
                // Salesforce's TEXT(datetime): "2024-03-14 09:26:53Z".
                Val::DateTime(t) => t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                other => return Err(mismatch("a value TEXT converts", &other)),
            }),
            Node::Contains(l, r) => Val::Bool(text(l.eval(ctx)?)?.contains(&text(r.eval(ctx)?)?)),
            Node::Begins(l, r) => Val::Bool(text(l.eval(ctx)?)?.starts_with(&text(r.eval(ctx)?)?)),
            Node::Len(n) => Val::Num(text(n.eval(ctx)?)?.chars().count() as f64),
            Node::Upper(n) => Val::Text(text(n.eval(ctx)?)?.to_uppercase()),
            Node::Lower(n) => Val::Text(text(n.eval(ctx)?)?.to_lowercase()),
        })
    }
}

/// `ISCHANGED`: text compares exactly (case matters), blank text equals null, multi-select values compare
/// as sets.
fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Text(s)) | (Val::Text(s), Val::Null) => s.is_empty(),
        (Val::Null, Val::Multi(v)) | (Val::Multi(v), Val::Null) => v.is_empty(),
        (Val::Multi(x), Val::Multi(y)) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

fn compare(op: CmpOp, kind: Ty, l: Val, r: Val) -> EvalResult<bool> {
    use std::cmp::Ordering;
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
    let ord: Ordering = match kind {
        // Formula text comparison is case-sensitive, unlike criteria items. The checker allows only
        // equality on text and booleans.
        Ty::Text => text(l)?.cmp(&text(r)?),
        Ty::Bool => truthy(&l)?.cmp(&truthy(&r)?),
        _ => match (&l, &r) {
            (Val::Null, _) | (_, Val::Null) => return Ok(false),
            (Val::Num(a), Val::Num(b)) => match a.partial_cmp(b) {
                Some(o) => o,
                None => return Ok(false),
            },
            (Val::Date(a), Val::Date(b)) => a.cmp(b),
            (Val::DateTime(a), Val::DateTime(b)) => a.cmp(b),
            // Only comparisons of two cross-object values get here with text or booleans.
            (Val::Text(a), Val::Text(b)) if equality => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) if equality => a.cmp(b),
            _ => {
                return Err(EvalError(format!(
                    "cannot compare a {} value with a {} value that way",
                    l.kind(),
                    r.kind()
                )));
            }
        },
    };
    Ok(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    })
}

const MILLIS_PER_DAY: f64 = 86_400_000.0;

fn days(n: f64) -> EvalResult<Duration> {
    let ms = (n * MILLIS_PER_DAY).round();
    if !ms.is_finite() || ms.abs() > 1e15 {
        return Err(EvalError(format!("{n} days is out of range")));
    }
    Ok(Duration::milliseconds(ms as i64))
}

fn arith(op: ArithOp, l: Val, r: Val) -> EvalResult<Val> {
    let overflow = || EvalError("date out of range".to_owned());
    Ok(match (op, l, r) {
        (_, Val::Null, _) | (_, _, Val::Null) => Val::Null,
        (ArithOp::Add, Val::Num(a), Val::Num(b)) => Val::Num(a + b),
        (ArithOp::Sub, Val::Num(a), Val::Num(b)) => Val::Num(a - b),
        // Date arithmetic is in whole days; Salesforce drops the fraction.
        (ArithOp::Add, Val::Date(d), Val::Num(n)) | (ArithOp::Add, Val::Num(n), Val::Date(d)) => {
            Val::Date(
                d.checked_add_signed(Duration::days(n.trunc() as i64))
                    .ok_or_else(overflow)?,
            )
        }
        (ArithOp::Sub, Val::Date(d), Val::Num(n)) => Val::Date(
            d.checked_sub_signed(Duration::days(n.trunc() as i64))
                .ok_or_else(overflow)?,
        ),
        (ArithOp::Add, Val::DateTime(t), Val::Num(n))
        | (ArithOp::Add, Val::Num(n), Val::DateTime(t)) => {
            Val::DateTime(t.checked_add_signed(days(n)?).ok_or_else(overflow)?)
        }
        (ArithOp::Sub, Val::DateTime(t), Val::Num(n)) => {
            Val::DateTime(t.checked_sub_signed(days(n)?).ok_or_else(overflow)?)
        }
        (ArithOp::Sub, Val::Date(a), Val::Date(b)) => Val::Num((a - b).num_days() as f64),
        (ArithOp::Sub, Val::DateTime(a), Val::DateTime(b)) => {
            Val::Num((a - b).num_milliseconds() as f64 / MILLIS_PER_DAY)
        }
        (ArithOp::Add, Val::Text(a), Val::Text(b)) => Val::Text(a + &b),
        (_, l, r) => {
            return Err(EvalError(format!(
                "cannot combine a {} value with a {} value",
                l.kind(),
                r.kind()
            )));
        }
    })
}
