//! Type checking: turns the syntax tree into an evaluable tree, refusing everything casewire could not
//! evaluate exactly as Salesforce does, with the position of the offending part.

use model::{FieldType, TriggerType};

use super::syntax::{Ast, SyntaxError};
use crate::error::Pos;
use crate::path::{FieldRef, ResolveError, Scope};
use crate::value::Val;

/// Static types. `Any` is a cross-object field (or, without a schema, a field of unknown type): checked
/// at run time. `Null` is the literal `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Text,
    Picklist,
    Multi,
    Number,
    Bool,
    Date,
    DateTime,
    Null,
    Any,
}

impl Ty {
    fn of(t: Option<FieldType>) -> Ty {
        match t {
            None => Ty::Any,
            Some(FieldType::Picklist) => Ty::Picklist,
            Some(FieldType::Multipicklist) => Ty::Multi,
            Some(FieldType::Boolean) => Ty::Bool,
            Some(FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent) => {
                Ty::Number
            }
            Some(FieldType::Date) => Ty::Date,
            Some(FieldType::Datetime) => Ty::DateTime,
            Some(_) => Ty::Text,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Picklist => "picklist",
            Ty::Multi => "multi-select picklist",
            Ty::Number => "number",
            Ty::Bool => "true/false",
            Ty::Date => "date",
            Ty::DateTime => "date/time",
            Ty::Null => "null",
            Ty::Any => "a value of unknown type",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
}

/// The evaluable tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Val),
    Field(FieldRef),
    Prior(FieldRef),
    IsChanged(FieldRef),
    IsNew,
    Today,
    Now,
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    IsBlank(Box<Node>),
    IsNull(Box<Node>),
    /// `kind` is the type both sides are compared as (`Any`: decided by the run-time values).
    Cmp {
        op: CmpOp,
        kind: Ty,
        l: Box<Node>,
        r: Box<Node>,
    },
    Arith {
        op: ArithOp,
        l: Box<Node>,
        r: Box<Node>,
    },
    Neg(Box<Node>),
    Concat(Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    Case {
        subject: Box<Node>,
        kind: Ty,
        arms: Vec<(Node, Node)>,
        default: Box<Node>,
    },
    /// `text`: the first argument is text, which Salesforce never considers null.
    NullValue {
        value: Box<Node>,
        substitute: Box<Node>,
        text: bool,
    },
    BlankValue(Box<Node>, Box<Node>),
    IsPickval(Box<Node>, String),
    Includes(Box<Node>, String),
    Text(Box<Node>),
    Contains(Box<Node>, Box<Node>),
    Begins(Box<Node>, Box<Node>),
    Len(Box<Node>),
    Upper(Box<Node>),
    Lower(Box<Node>),
}

pub(crate) struct Checker<'a> {
    pub scope: Scope<'a>,
    pub trigger: TriggerType,
}

type Checked = Result<(Node, Ty), SyntaxError>;

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err((pos, message.into()))
}

/// Picklists in Salesforce formulas are only usable through a few functions; using one as a value is a
/// formula error there, and so it is here.
fn no_picklist(ty: Ty, pos: Pos) -> Result<(), SyntaxError> {
    match ty {
        Ty::Picklist => err(
            pos,
            "a picklist field can only be used in ISPICKVAL, TEXT, CASE, ISBLANK, ISCHANGED or PRIORVALUE",
        ),
        Ty::Multi => err(
            pos,
            "a multi-select picklist field can only be used in INCLUDES, ISBLANK, ISCHANGED or PRIORVALUE",
        ),
        _ => Ok(()),
    }
}

fn unify(a: Ty, b: Ty) -> Option<Ty> {
    match (a, b) {
        _ if a == b => Some(a),
        (Ty::Any | Ty::Null, other) | (other, Ty::Any | Ty::Null) => Some(other),
        _ => None,
    }
}

impl Checker<'_> {
    /// Checks a whole formula, which must yield true or false.
    pub fn check_root(&self, ast: &Ast) -> Result<Node, SyntaxError> {
        let (node, ty) = self.check(ast)?;
        self.expect_bool(ty, ast.pos())?;
        Ok(node)
    }

    fn expect_bool(&self, ty: Ty, pos: Pos) -> Result<(), SyntaxError> {
        match ty {
            Ty::Bool | Ty::Any | Ty::Null => Ok(()),
            other => err(pos, format!("expected true/false, found {}", other.name())),
        }
    }

    fn expect_text(&self, ty: Ty, pos: Pos) -> Result<(), SyntaxError> {
        no_picklist(ty, pos)?;
        match ty {
            Ty::Text | Ty::Any | Ty::Null => Ok(()),
            other => err(pos, format!("expected text, found {}", other.name())),
        }
    }

    fn check(&self, ast: &Ast) -> Checked {
        match ast {
            Ast::Num(n, _) => Ok((Node::Const(Val::Num(*n)), Ty::Number)),
            Ast::Str(s, _) => Ok((Node::Const(Val::Text(s.clone())), Ty::Text)),
            Ast::Bool(b, _) => Ok((Node::Const(Val::Bool(*b)), Ty::Bool)),
            Ast::Null(_) => Ok((Node::Const(Val::Null), Ty::Null)),
            Ast::Ref(name, pos) => {
                let field = self.field(name, *pos)?;
                let ty = Ty::of(field.ftype());
                Ok((Node::Field(field), ty))
            }
            Ast::Unary(op, operand, pos) => {
                let (node, ty) = self.check(operand)?;
                match *op {
                    "!" => {
                        self.expect_bool(ty, operand.pos())?;
                        Ok((Node::Not(Box::new(node)), Ty::Bool))
                    }
                    _ => {
                        no_picklist(ty, operand.pos())?;
                        if !matches!(ty, Ty::Number | Ty::Any) {
                            return err(
                                *pos,
                                format!("unary {op} needs a number, found {}", ty.name()),
                            );
                        }
                        let node = if *op == "-" {
                            Node::Neg(Box::new(node))
                        } else {
                            node
                        };
                        Ok((node, ty))
                    }
                }
            }
            Ast::Binary(op, l, r, pos) => self.binary(op, l, r, *pos),
            Ast::Call(name, args, pos) => self.call(name, args, *pos),
        }
    }

    fn field(&self, name: &str, pos: Pos) -> Result<FieldRef, SyntaxError> {
        if name.starts_with('$') {
            return err(pos, format!("unsupported global {name}"));
        }
        let parts: Vec<&str> = name.split('.').collect();
        let resolved = match parts.as_slice() {
            [field] => self.scope.own(field),
            [relationship, field] => self.scope.lookup(relationship, field),
            _ => {
                return err(
                    pos,
                    format!("{name}: references through more than one lookup are not supported"),
                );
            }
        };
        resolved.map_err(|e| match e {
            ResolveError::Unknown(field) => {
                (pos, format!("{} has no field {field:?}", self.scope.object))
            }
            ResolveError::Unsupported(message) => (pos, message),
        })
    }

    /// `ISCHANGED`/`PRIORVALUE` take a field of the rule's object, and Salesforce offers them only to
    /// rules evaluated on every edit.
    fn own_field_arg(&self, fname: &str, args: &[Ast], pos: Pos) -> Result<FieldRef, SyntaxError> {
        arity(fname, args, 1, pos)?;
        if self.trigger != TriggerType::OnAllChanges {
            return err(
                pos,
                format!(
                    "{fname} is only available when the rule is evaluated on every edit (onAllChanges), not {}",
                    self.trigger.as_str()
                ),
            );
        }
        let Ast::Ref(name, at) = &args[0] else {
            return err(args[0].pos(), format!("{fname} takes a field"));
        };
        let field = self.field(name, *at)?;
        if !field.is_own() {
            return err(
                *at,
                format!(
                    "{fname} takes a field of {}, not a related record's",
                    self.scope.object
                ),
            );
        }
        Ok(field)
    }

    fn binary(&self, op: &'static str, l: &Ast, r: &Ast, pos: Pos) -> Checked {
        let (ln, lt) = self.check(l)?;
        let (rn, rt) = self.check(r)?;
        let (lp, rp) = (l.pos(), r.pos());
        match op {
            "&&" | "||" => {
                self.expect_bool(lt, lp)?;
                self.expect_bool(rt, rp)?;
                let args = vec![ln, rn];
                Ok((
                    if op == "&&" {
                        Node::And(args)
                    } else {
                        Node::Or(args)
                    },
                    Ty::Bool,
                ))
            }
            "=" | "==" | "!=" | "<>" | "<" | ">" | "<=" | ">=" => {
                let cmp = match op {
                    "=" | "==" => CmpOp::Eq,
                    "!=" | "<>" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    ">" => CmpOp::Gt,
                    "<=" => CmpOp::Le,
                    _ => CmpOp::Ge,
                };
                let equality = matches!(cmp, CmpOp::Eq | CmpOp::Ne);
                // `x = null` / `x != null` test blankness in Salesforce; anything else against null is an error.
                if lt == Ty::Null || rt == Ty::Null {
                    if !equality {
                        return err(pos, format!("cannot order null with {op}"));
                    }
                    let other = if lt == Ty::Null { rn } else { ln };
                    let blank = Node::IsBlank(Box::new(other));
                    let node = if cmp == CmpOp::Eq {
                        blank
                    } else {
                        Node::Not(Box::new(blank))
                    };
                    return Ok((node, Ty::Bool));
                }
                no_picklist(lt, lp)?;
                no_picklist(rt, rp)?;
                let Some(kind) = unify(lt, rt) else {
                    return err(
                        pos,
                        format!("cannot compare {} with {}", lt.name(), rt.name()),
                    );
                };
                if !equality && matches!(kind, Ty::Text | Ty::Bool) {
                    return err(
                        pos,
                        format!("{op} does not apply to {} values", kind.name()),
                    );
                }
                Ok((
                    Node::Cmp {
                        op: cmp,
                        kind,
                        l: Box::new(ln),
                        r: Box::new(rn),
                    },
                    Ty::Bool,
                ))
            }
            "&" => {
                self.expect_text(lt, lp)?;
                self.expect_text(rt, rp)?;
                Ok((Node::Concat(Box::new(ln), Box::new(rn)), Ty::Text))
            }
            "+" | "-" => {
                no_picklist(lt, lp)?;
                no_picklist(rt, rp)?;
                let add = op == "+";
                use Ty::*;
                let ty = match (lt, rt) {
                    (Number, Number) => Number,
                    (Date, Number) => Date,
                    (DateTime, Number) => DateTime,
                    (Number, Date) if add => Date,
                    (Number, DateTime) if add => DateTime,
                    (Date, Date) | (DateTime, DateTime) if !add => Number,
                    (Text, Text) if add => Text,
                    (Any, Text) | (Text, Any) if add => Text,
                    (Any, Date) | (Date, Any) if add => Date,
                    (Any, DateTime) | (DateTime, Any) if add => DateTime,
                    (Any, Date | DateTime) => Number,
                    (Any, Number | Any) | (Number, Any) | (Date | DateTime, Any) => Any,
                    _ => {
                        return err(
                            pos,
                            format!("cannot apply {op} to {} and {}", lt.name(), rt.name()),
                        );
                    }
                };
                if ty == Text {
                    return Ok((Node::Concat(Box::new(ln), Box::new(rn)), Text));
                }
                let op = if add { ArithOp::Add } else { ArithOp::Sub };
                Ok((
                    Node::Arith {
                        op,
                        l: Box::new(ln),
                        r: Box::new(rn),
                    },
                    ty,
                ))
            }
            other => err(pos, format!("unsupported operator {other}")),
        }
    }

    fn call(&self, name: &str, args: &[Ast], pos: Pos) -> Checked {
        let checked = |i: usize| self.check(&args[i]);
        let b = Box::new;
        match name {
            "AND" | "OR" => {
                if args.is_empty() {
                    return err(pos, format!("{name} needs at least one argument"));
                }
                let mut nodes = Vec::with_capacity(args.len());
                for a in args {
                    let (n, t) = self.check(a)?;
                    self.expect_bool(t, a.pos())?;
                    nodes.push(n);
                }
                Ok((
                    if name == "AND" {
                        Node::And(nodes)
                    } else {
                        Node::Or(nodes)
                    },
                    Ty::Bool,
                ))
            }
            "NOT" => {
                arity(name, args, 1, pos)?;
                let (n, t) = checked(0)?;
                self.expect_bool(t, args[0].pos())?;
                Ok((Node::Not(b(n)), Ty::Bool))
            }
            "ISNEW" | "TODAY" | "NOW" => {
                arity(name, args, 0, pos)?;
                Ok(match name {
                    "ISNEW" => (Node::IsNew, Ty::Bool),
                    "TODAY" => (Node::Today, Ty::Date),
                    _ => (Node::Now, Ty::DateTime),
                })
            }
            "ISCHANGED" => Ok((
                Node::IsChanged(self.own_field_arg(name, args, pos)?),
                Ty::Bool,
            )),
            "PRIORVALUE" => {
                let field = self.own_field_arg(name, args, pos)?;
                let ty = Ty::of(field.ftype());
                Ok((Node::Prior(field), ty))
            }
            "ISPICKVAL" | "INCLUDES" => {
                arity(name, args, 2, pos)?;
                let (n, t) = checked(0)?;
                let want = if name == "ISPICKVAL" {
                    Ty::Picklist
                } else {
                    Ty::Multi
                };
                if t != want && t != Ty::Any {
                    return err(
                        args[0].pos(),
                        format!("{name} needs a {} field, found {}", want.name(), t.name()),
                    );
                }
                let Ast::Str(literal, _) = &args[1] else {
                    return err(
                        args[1].pos(),
                        format!("{name} compares with a text literal"),
                    );
                };
                let node = if name == "ISPICKVAL" {
                    Node::IsPickval(b(n), literal.clone())
                } else {
                    Node::Includes(b(n), literal.clone())
                };
                Ok((node, Ty::Bool))
            }
            "ISBLANK" => {
                arity(name, args, 1, pos)?;
                let (n, _) = checked(0)?;
                Ok((Node::IsBlank(b(n)), Ty::Bool))
            }
            "ISNULL" => {
                arity(name, args, 1, pos)?;
                let (n, t) = checked(0)?;
                no_picklist(t, args[0].pos())?;
                match t {
                    // Salesforce: "Text fields are never null, so ISNULL() with a text field always returns false."
                    Ty::Text => Ok((Node::Const(Val::Bool(false)), Ty::Bool)),
                    Ty::Any if self.scope.schema.is_some() => err(
                        args[0].pos(),
                        "ISNULL on a related record's field of unknown type (always false for text): use ISBLANK",
                    ),
                    _ => Ok((Node::IsNull(b(n)), Ty::Bool)),
                }
            }
            "TEXT" => {
                arity(name, args, 1, pos)?;
                let (n, t) = checked(0)?;
                match t {
                    Ty::Bool | Ty::Multi => {
                        err(args[0].pos(), format!("TEXT does not take {}", t.name()))
                    }
                    _ => Ok((Node::Text(b(n)), Ty::Text)),
                }
            }
            "CONTAINS" | "BEGINS" => {
                arity(name, args, 2, pos)?;
                let (l, lt) = checked(0)?;
                let (r, rt) = checked(1)?;
                self.expect_text(lt, args[0].pos())?;
                self.expect_text(rt, args[1].pos())?;
                let node = if name == "CONTAINS" {
                    Node::Contains(b(l), b(r))
                } else {
                    Node::Begins(b(l), b(r))
                };
                Ok((node, Ty::Bool))
            }
            "LEN" | "UPPER" | "LOWER" => {
                arity(name, args, 1, pos)?;
                let (n, t) = checked(0)?;
                self.expect_text(t, args[0].pos())?;
                Ok(match name {
                    "LEN" => (Node::Len(b(n)), Ty::Number),
                    "UPPER" => (Node::Upper(b(n)), Ty::Text),
                    _ => (Node::Lower(b(n)), Ty::Text),
                })
            }
            "IF" => {
                arity(name, args, 3, pos)?;
                let (c, ct) = checked(0)?;
                self.expect_bool(ct, args[0].pos())?;
                let (x, xt) = checked(1)?;
                let (y, yt) = checked(2)?;
                no_picklist(xt, args[1].pos())?;
                no_picklist(yt, args[2].pos())?;
                let ty = unify(xt, yt).ok_or_else(|| {
                    (
                        pos,
                        format!("IF branches differ: {} and {}", xt.name(), yt.name()),
                    )
                })?;
                Ok((Node::If(b(c), b(x), b(y)), ty))
            }
            "NULLVALUE" | "BLANKVALUE" => {
                arity(name, args, 2, pos)?;
                let (x, xt) = checked(0)?;
                let (y, yt) = checked(1)?;
                no_picklist(xt, args[0].pos())?;
                no_picklist(yt, args[1].pos())?;
                let ty = unify(xt, yt).ok_or_else(|| {
                    (
                        pos,
                        format!("{name} arguments differ: {} and {}", xt.name(), yt.name()),
                    )
                })?;
                let node = if name == "NULLVALUE" {
                    Node::NullValue {
                        value: b(x),
                        substitute: b(y),
                        text: xt == Ty::Text,
                    }
                } else {
                    Node::BlankValue(b(x), b(y))
                };
                Ok((node, ty))
            }
            "CASE" => self.case(args, pos),
            _ => err(pos, format!("unsupported function {name}")),
        }
    }

    fn case(&self, args: &[Ast], pos: Pos) -> Checked {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return err(
                pos,
                format!(
                    "CASE takes an expression, value/result pairs and a default result, got {} arguments",
                    args.len()
                ),
            );
        }
        let (subject, st) = self.check(&args[0])?;
        // CASE is one of the few places a picklist may appear; its value compares as text.
        let kind = match st {
            Ty::Picklist => Ty::Text,
            Ty::Multi | Ty::Null => {
                return err(args[0].pos(), format!("CASE does not take {}", st.name()));
            }
            other => other,
        };
        let mut kind = kind;
        let mut result_ty = Ty::Null;
        let mut arms = Vec::new();
        let pairs = &args[1..args.len() - 1];
        for pair in pairs.chunks(2) {
            let (v, vt) = self.check(&pair[0])?;
            no_picklist(vt, pair[0].pos())?;
            kind = unify(kind, vt).ok_or_else(|| {
                (
                    pair[0].pos(),
                    format!("CASE value is {}, expected {}", vt.name(), kind.name()),
                )
            })?;
            let (r, rt) = self.check(&pair[1])?;
            no_picklist(rt, pair[1].pos())?;
            result_ty = unify(result_ty, rt).ok_or_else(|| {
                (
                    pair[1].pos(),
                    format!(
                        "CASE result is {}, expected {}",
                        rt.name(),
                        result_ty.name()
                    ),
                )
            })?;
            arms.push((v, r));
        }
        let last = &args[args.len() - 1];
        let (default, dt) = self.check(last)?;
        no_picklist(dt, last.pos())?;
        result_ty = unify(result_ty, dt).ok_or_else(|| {
            (
                last.pos(),
                format!(
                    "CASE default is {}, expected {}",
                    dt.name(),
                    result_ty.name()
                ),
            )
        })?;
        Ok((
            Node::Case {
                subject: Box::new(subject),
                kind,
                arms,
                default: Box::new(default),
            },
            result_ty,
        ))
    }
}

fn arity(name: &str, args: &[Ast], n: usize, pos: Pos) -> Result<(), SyntaxError> {
    if args.len() == n {
        return Ok(());
    }
    let plural = if n == 1 { "" } else { "s" };
    err(
        pos,
        format!("{name} takes {n} argument{plural}, got {}", args.len()),
    )
}
