//! A permissive schema for an imported Workflow file when the real object definition is not at hand.

use std::collections::BTreeMap;

use model::{Criteria, CriteriaItem, FieldDef, FieldType, ObjectSchema};

use crate::ImportedWorkflow;
use crate::formula::syntax::{self, Ast};
use crate::path::{is_api_name, lookup_field_of, standard_type};

/// Builds a schema for `object` holding every field the imported rules and actions reference, so that the
/// rules compile without the org's object definition.
///
/// Types are guesses, in this order: the built-in Case fields (for `Case`), well-known standard fields
/// (`Status` picklist, `OwnerId` lookup, `IsConverted` checkbox, `CreatedDate` date/time, ...), then how
/// the rules use the field (`ISPICKVAL(f, ..)` picklist, `INCLUDES` multi-select, `f = TRUE` or a
/// True/False criteria value checkbox, `f >= 5` number, `f - 2 > TODAY()` date, a lookup behind
/// `Rel.Field` or `Rel__r.Field`), and text (`String`) for everything else. A wrong guess changes how a
/// rule compiles or compares (text compares case-insensitively in criteria, `ISNULL` of text is always
/// false), so production use should describe the object's real fields in configuration instead.
///
/// Key prefixes: the standard ones for standard objects; for others `a` plus two base-62 characters
/// derived from the name (stable, but not the org's prefix, and two objects may share one).
pub fn schema_for_import(object: &str, imported: &ImportedWorkflow) -> ObjectSchema {
    let mut schema = if object.eq_ignore_ascii_case("Case") {
        ObjectSchema::case()
    } else {
        ObjectSchema::custom(object, &key_prefix(object), [])
    };
    let mut seen = Seen {
        object,
        schema: &schema,
        fields: BTreeMap::new(),
    };
    for action in &imported.actions {
        for field in &action.fields {
            seen.note(field, None);
        }
    }
    for rule in &imported.rules {
        match &rule.criteria {
            Criteria::Items { items, .. } => {
                for item in items {
                    seen.criteria_item(item);
                }
            }
            Criteria::Formula(source) => {
                if let Ok(ast) = syntax::parse(source) {
                    seen.walk(&ast, Some(FieldType::Boolean));
                }
            }
        }
    }
    let found: Vec<(String, FieldType)> = seen
        .fields
        .into_values()
        .map(|(name, inferred)| {
            let ftype = standard_type(object, &name)
                .or(inferred)
                .unwrap_or(FieldType::String);
            (name, ftype)
        })
        .collect();
    for (name, ftype) in found {
        if schema
            .fields
            .values()
            .any(|d| d.name.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        schema.add_field(FieldDef {
            name,
            ftype,
            updateable: true,
        });
    }
    schema
}

/// Key prefixes of standard objects casewire may meet in imported metadata.
fn key_prefix(object: &str) -> String {
    let known = match object {
        "Account" => "001",
        "Contact" => "003",
        "User" => "005",
        "Opportunity" => "006",
        "Lead" => "00Q",
        "Task" => "00T",
        "Event" => "00U",
        "Product2" => "01t",
        "Asset" => "02i",
        "Case" => "500",
        "Campaign" => "701",
        "Contract" => "800",
        "Order" => "801",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in object.to_ascii_lowercase().bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let n = (hash % (62 * 62)) as usize;
    format!(
        "a{}{}",
        char::from(BASE62[n / 62]),
        char::from(BASE62[n % 62])
    )
}

struct Seen<'a> {
    object: &'a str,
    schema: &'a ObjectSchema,
    /// Lower-cased name -> (first spelling, first inferred type).
    fields: BTreeMap<String, (String, Option<FieldType>)>,
}

impl Seen<'_> {
    fn note(&mut self, name: &str, ftype: Option<FieldType>) {
        if !is_api_name(name) {
            return;
        }
        let entry = self
            .fields
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| (name.to_owned(), None));
        if entry.1.is_none() {
            entry.1 = ftype;
        }
    }

    /// A field's type as far as known so far.
    fn known(&self, name: &str) -> Option<FieldType> {
        self.schema
            .fields
            .values()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .map(|d| d.ftype)
            .or_else(|| standard_type(self.object, name))
            .or_else(|| {
                self.fields
                    .get(&name.to_ascii_lowercase())
                    .and_then(|(_, t)| *t)
            })
    }

    fn criteria_item(&mut self, item: &CriteriaItem) {
        let parts: Vec<&str> = item.field.split('.').collect();
        let is_object = |s: &str| s.eq_ignore_ascii_case(self.object);
        let own = match parts.as_slice() {
            [name] => *name,
            [obj, name] if is_object(obj) => *name,
            [rel, _] if !rel.starts_with('$') && !rel.eq_ignore_ascii_case("User") => {
                self.note(&lookup_field_of(rel), Some(FieldType::Reference));
                return;
            }
            [obj, rel, _] if is_object(obj) => {
                self.note(&lookup_field_of(rel), Some(FieldType::Reference));
                return;
            }
            _ => return,
        };
        let values: Vec<&str> = item
            .value
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let all = |f: &dyn Fn(&str) -> bool| !values.is_empty() && values.iter().all(|v| f(v));
        let ftype = match item.operation.as_str() {
            "includes" | "excludes" => Some(FieldType::Multipicklist),
            "equals" | "notEqual"
                if all(&|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) =>
            {
                Some(FieldType::Boolean)
            }
            "lessThan" | "greaterThan" | "lessOrEqual" | "greaterOrEqual" => {
                if all(&|v| v.parse::<f64>().is_ok()) {
                    Some(FieldType::Double)
                } else if all(&|v| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()) {
                    Some(FieldType::Date)
                } else {
                    None
                }
            }
            _ => None,
        };
        self.note(own, ftype);
    }

    /// The type an expression yields, where it can be told without a full check.
    fn static_type(&self, ast: &Ast) -> Option<FieldType> {
        use FieldType::*;
        match ast {
            Ast::Num(..) => Some(Double),
            Ast::Str(..) => Some(String),
            Ast::Bool(..) => Some(Boolean),
            Ast::Null(_) => None,
            Ast::Ref(name, _) if !name.contains(['.', '$']) => self.known(name),
            Ast::Ref(..) => None,
            Ast::Unary("!", ..) => Some(Boolean),
            Ast::Unary(..) => Some(Double),
            Ast::Binary(op, l, r, _) => match *op {
                "&" => Some(String),
                "+" | "-" => {
                    let (lt, rt) = (self.static_type(l), self.static_type(r));
                    match (lt, rt) {
                        (Some(Date), Some(Date)) | (Some(Datetime), Some(Datetime)) => Some(Double),
                        (Some(t @ (Date | Datetime)), _) | (_, Some(t @ (Date | Datetime))) => {
                            Some(t)
                        }
                        (Some(Double), Some(Double)) => Some(Double),
                        _ => None,
                    }
                }
                _ => Some(Boolean),
            },
            Ast::Call(name, args, _) => match name.as_str() {
                "TODAY" => Some(Date),
                "NOW" => Some(Datetime),
                "TEXT" | "UPPER" | "LOWER" => Some(String),
                "LEN" => Some(Double),
                "PRIORVALUE" => args.first().and_then(|a| self.static_type(a)),
                "IF" => args
                    .get(1)
                    .and_then(|a| self.static_type(a))
                    .or_else(|| args.get(2).and_then(|a| self.static_type(a))),
                "NULLVALUE" | "BLANKVALUE" => args.iter().find_map(|a| self.static_type(a)),
                "CASE" => args.get(2).and_then(|a| self.static_type(a)),
                _ => Some(Boolean),
            },
        }
    }

    fn walk(&mut self, ast: &Ast, expected: Option<FieldType>) {
        use FieldType::*;
        match ast {
            Ast::Ref(name, _) => {
                let parts: Vec<&str> = name.split('.').collect();
                match parts.as_slice() {
                    [field] if !field.starts_with('$') => self.note(field, expected),
                    [rel, _] if !rel.starts_with('$') => {
                        self.note(&lookup_field_of(rel), Some(Reference))
                    }
                    _ => {}
                }
            }
            Ast::Unary(op, operand, _) => {
                self.walk(operand, Some(if *op == "!" { Boolean } else { Double }))
            }
            Ast::Binary(op, l, r, _) => match *op {
                "&&" | "||" => {
                    self.walk(l, Some(Boolean));
                    self.walk(r, Some(Boolean));
                }
                "&" => {
                    self.walk(l, Some(String));
                    self.walk(r, Some(String));
                }
                "+" | "-" => {
                    let (lt, rt) = (self.static_type(l), self.static_type(r));
                    match expected {
                        // `Start_Date__c - 2 > TODAY()`: the non-number side takes the date type.
                        Some(t @ (Date | Datetime)) => {
                            self.walk(l, if lt == Some(Double) { lt } else { Some(t) });
                            self.walk(
                                r,
                                if rt == Some(Double) || lt != Some(Double) {
                                    Some(Double)
                                } else {
                                    Some(t)
                                },
                            );
                        }
                        _ => {
                            self.walk(l, rt.filter(|t| *t == Double));
                            self.walk(r, lt.filter(|t| *t == Double));
                        }
                    }
                }
                _ => {
                    let (lt, rt) = (self.static_type(l), self.static_type(r));
                    self.walk(l, rt);
                    self.walk(r, lt);
                }
            },
            Ast::Call(name, args, _) => self.call(name, args, expected),
            Ast::Num(..) | Ast::Str(..) | Ast::Bool(..) | Ast::Null(_) => {}
        }
    }

    fn call(&mut self, name: &str, args: &[Ast], expected: Option<FieldType>) {
        use FieldType::*;
        let arg_types: Vec<Option<FieldType>> = match name {
            "AND" | "OR" | "NOT" => vec![Some(Boolean); args.len()],
            "ISPICKVAL" => vec![Some(Picklist), Some(String)],
            "INCLUDES" => vec![Some(Multipicklist), Some(String)],
            "CONTAINS" | "BEGINS" | "LEN" | "UPPER" | "LOWER" => vec![Some(String); args.len()],
            "PRIORVALUE" => vec![expected],
            "IF" => {
                let (x, y) = (args.get(1), args.get(2));
                let xt = x.and_then(|a| self.static_type(a));
                let yt = y.and_then(|a| self.static_type(a));
                vec![Some(Boolean), expected.or(yt), expected.or(xt)]
            }
            "NULLVALUE" | "BLANKVALUE" => {
                let first = args.first().and_then(|a| self.static_type(a));
                let second = args.get(1).and_then(|a| self.static_type(a));
                vec![expected.or(second), expected.or(first)]
            }
            "CASE" if args.len() >= 2 => {
                let subject = self.static_type(&args[0]);
                let value = self.static_type(&args[1]);
                let last = args.len() - 1;
                (0..args.len())
                    .map(|i| match i {
                        0 => value,
                        i if i == last || i % 2 == 0 => expected,
                        _ => subject.map(|t| if t == Picklist { String } else { t }),
                    })
                    .collect()
            }
            _ => vec![None; args.len()],
        };
        for (i, arg) in args.iter().enumerate() {
            self.walk(arg, arg_types.get(i).copied().flatten());
        }
    }
}
