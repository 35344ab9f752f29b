//! The subset of SOQL that Salesforce client libraries send for lookups:
//!
//! ```text
//! SELECT field [, field]* FROM Object [WHERE field op literal [AND field op literal]*] [LIMIT n]
//! ```
//!
//! with `op` one of `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=` and literals `'text'` (backslash escapes as in
//! SOQL), numbers, `true`, `false`, `null`, dates (`2024-03-14`) and date-times
//! (`2024-03-14T09:26:53Z`, `...53.000+01:00`). Keywords are case-insensitive. Everything else (OR,
//! NOT, parentheses, IN, LIKE, ORDER BY, GROUP BY, OFFSET, functions, relationship fields, sub-queries,
//! date literals such as `TODAY`) is refused with a [`SoqlError`] that points at the first token
//! casewire does not understand, in the shape of Salesforce's `MALFORMED_QUERY` message.
//!
//! Parsing only: field and object names are checked against a schema, and literals typed, by the
//! caller. Pure: no I/O.

mod lex;

use lex::{Lexer, Tok, Token};

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Field names as written, in order (duplicates kept; the caller decides).
    pub fields: Vec<String>,
    /// The object name as written.
    pub object: String,
    /// Conditions that must all hold (`AND`).
    pub conditions: Vec<Condition>,
    pub limit: Option<u64>,
}

/// `field op literal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub value: Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A literal as written; typing it against the field is the caller's job (it knows the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A quoted string, escapes resolved.
    Text(String),
    /// A number as written (`42`, `-1.5`).
    Number(String),
    Bool(bool),
    Null,
    /// `YYYY-MM-DD`.
    Date(String),
    /// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`.
    DateTime(String),
}

/// Why a query is not in the supported subset, with the 1-based row and column of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} at Row:{row}:Column:{column}")]
pub struct SoqlError {
    pub row: usize,
    pub column: usize,
    /// `unexpected token: 'ORDER'`, `unterminated string`, ...
    pub detail: String,
    /// The query line the error is on, for [`SoqlError::salesforce_message`].
    line: String,
}

impl SoqlError {
    /// The message as Salesforce writes it for `MALFORMED_QUERY`: the line, a caret under the column,
    /// the position, and the detail.
    pub fn salesforce_message(&self) -> String {
        let caret = format!("{}^", " ".repeat(self.column.saturating_sub(1)));
        format!(
            "\n{}\n{caret}\nERROR at Row:{}:Column:{}\n{}",
            self.line, self.row, self.column, self.detail
        )
    }
}

/// Parses `text` as a query of the supported subset.
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    let tokens = Lexer::new(text)
        .tokens()
        .map_err(|(offset, detail)| error_at(text, offset, detail))?;
    Parser {
        text,
        tokens,
        at: 0,
    }
    .query()
}

fn error_at(text: &str, offset: usize, detail: String) -> SoqlError {
    let before = &text[..offset.min(text.len())];
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset.min(text.len())].chars().count() + 1;
    let line = text[line_start..]
        .split('\n')
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned();
    SoqlError {
        row,
        column,
        detail,
        line,
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with an Eof token.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self, token: &Token) -> SoqlError {
        let shown = match &token.tok {
            Tok::Eof => "<EOF>".to_owned(),
            _ => self.text[token.start..token.end].to_owned(),
        };
        error_at(
            self.text,
            token.start,
            format!("unexpected token: '{shown}'"),
        )
    }

    fn keyword(&mut self, word: &str) -> Result<(), SoqlError> {
        let t = self.next();
        match &t.tok {
            Tok::Ident(w) if w.eq_ignore_ascii_case(word) => Ok(()),
            _ => Err(self.unexpected(&t)),
        }
    }

    fn at_keyword(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(w) if w.eq_ignore_ascii_case(word))
    }

    /// A field or object name: a plain identifier that is not a reserved word of the subset.
    fn name(&mut self) -> Result<String, SoqlError> {
        let t = self.next();
        match &t.tok {
            Tok::Ident(w) if !is_reserved(w) => {
                if matches!(self.peek().tok, Tok::Dot) {
                    let dot = self.peek().clone();
                    return Err(error_at(
                        self.text,
                        dot.start,
                        format!("relationship fields ({w}.…) are not supported by casewire"),
                    ));
                }
                if matches!(self.peek().tok, Tok::LParen) {
                    return Err(error_at(
                        self.text,
                        t.start,
                        format!("functions ({w}(…)) are not supported by casewire"),
                    ));
                }
                Ok(w.clone())
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    fn query(mut self) -> Result<Query, SoqlError> {
        self.keyword("SELECT")?;
        let mut fields = vec![self.name()?];
        while matches!(self.peek().tok, Tok::Comma) {
            self.next();
            fields.push(self.name()?);
        }
        self.keyword("FROM")?;
        let object = self.name()?;
        let mut conditions = Vec::new();
        if self.at_keyword("WHERE") {
            self.next();
            conditions.push(self.condition()?);
            while self.at_keyword("AND") {
                self.next();
                conditions.push(self.condition()?);
            }
        }
        let mut limit = None;
        if self.at_keyword("LIMIT") {
            self.next();
            let t = self.next();
            match &t.tok {
                Tok::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => {
                    limit = Some(n.parse().map_err(|_| self.unexpected(&t))?);
                }
                _ => return Err(self.unexpected(&t)),
            }
        }
        let end = self.next();
        if !matches!(end.tok, Tok::Eof) {
            return Err(self.unexpected(&end));
        }
        Ok(Query {
            fields,
            object,
            conditions,
            limit,
        })
    }

    fn condition(&mut self) -> Result<Condition, SoqlError> {
        let field = self.name()?;
        let t = self.next();
        let op = match &t.tok {
            Tok::Op(op) => *op,
            _ => return Err(self.unexpected(&t)),
        };
        let t = self.next();
        let value = match &t.tok {
            Tok::Text(s) => Literal::Text(s.clone()),
            Tok::Number(n) => Literal::Number(n.clone()),
            Tok::Date(d) => Literal::Date(d.clone()),
            Tok::DateTime(d) => Literal::DateTime(d.clone()),
            Tok::Ident(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Ident(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.unexpected(&t)),
        };
        Ok(Condition { field, op, value })
    }
}

/// Words of SOQL that are never a field or object name here (so `SELECT FROM Case` fails at `FROM`).
fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIMIT", "ORDER", "BY", "GROUP", "HAVING",
        "OFFSET", "IN", "LIKE", "INCLUDES", "EXCLUDES", "NULL", "TRUE", "FALSE", "WITH", "USING",
        "TYPEOF", "FOR",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests;
