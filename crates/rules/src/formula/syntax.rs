//! Tokens and syntax tree of the formula language. Positions are 1-based line and column (characters).

use crate::error::Pos;

pub(crate) type SyntaxError = (Pos, String);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name: function, field reference (`Account.Name`), global (`$User.Id`), TRUE/FALSE/NULL.
    Ident(String),
    Num(f64),
    Str(String),
    Open,
    Close,
    Comma,
    Op(&'static str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Longest first, so that `<=` is not read as `<` then `=`.
const OPERATORS: &[&str] = &[
    "==", "!=", "<>", "<=", ">=", "&&", "||", "=", "<", ">", "+", "-", "*", "/", "^", "&", "!",
];

struct Cursor {
    chars: Vec<char>,
    at: usize,
    line: u32,
    column: u32,
}

impl Cursor {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek(i) == Some(c))
    }
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut cur = Cursor {
        chars: src.chars().collect(),
        at: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = cur.peek(0) {
        let pos = cur.pos();
        if c.is_whitespace() {
            cur.bump();
            continue;
        }
        if cur.starts_with("/*") {
            cur.bump();
            cur.bump();
            loop {
                if cur.starts_with("*/") {
                    cur.bump();
                    cur.bump();
                    break;
                }
                if cur.bump().is_none() {
                    return Err((pos, "unterminated comment".to_owned()));
                }
            }
            continue;
        }
        let tok = match c {
            '(' => {
                cur.bump();
                Tok::Open
            }
            ')' => {
                cur.bump();
                Tok::Close
            }
            ',' => {
                cur.bump();
                Tok::Comma
            }
            '"' | '\'' => Tok::Str(string(&mut cur, pos)?),
            c if c.is_ascii_digit()
                || (c == '.' && cur.peek(1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut text = String::new();
                while let Some(d) = cur.peek(0).filter(|d| d.is_ascii_digit() || *d == '.') {
                    text.push(d);
                    cur.bump();
                }
                let n = text
                    .parse::<f64>()
                    .map_err(|_| (pos, format!("{text:?} is not a number")))?;
                Tok::Num(n)
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let mut text = String::new();
                while let Some(d) = cur
                    .peek(0)
                    .filter(|d| d.is_alphanumeric() || matches!(d, '_' | '.' | '$'))
                {
                    text.push(d);
                    cur.bump();
                }
                Tok::Ident(text)
            }
            _ => match OPERATORS.iter().find(|op| cur.starts_with(op)) {
                Some(op) => {
                    for _ in 0..op.len() {
                        cur.bump();
                    }
                    Tok::Op(op)
                }
                None => return Err((pos, format!("unexpected character {c:?}"))),
            },
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::End,
        pos: cur.pos(),
    });
    Ok(out)
}

fn string(cur: &mut Cursor, start: Pos) -> Result<String, SyntaxError> {
    let quote = cur.bump();
    let mut out = String::new();
    loop {
        let pos = cur.pos();
        match cur.bump() {
            None => return Err((start, "unterminated string".to_owned())),
            Some(c) if Some(c) == quote => return Ok(out),
            Some('\\') => match cur.bump() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => return Err((pos, format!("unknown escape \\{other}"))),
                None => return Err((start, "unterminated string".to_owned())),
            },
            Some(c) => out.push(c),
        }
    }
}

/// The syntax tree. Every node keeps the position where it starts (operators: the operator's position).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Num(f64, Pos),
    Str(String, Pos),
    Bool(bool, Pos),
    Null(Pos),
    /// A field reference or global, as written.
    Ref(String, Pos),
    Unary(&'static str, Box<Ast>, Pos),
    Binary(&'static str, Box<Ast>, Box<Ast>, Pos),
    /// Function name upper-cased (Salesforce function names are case-insensitive).
    Call(String, Vec<Ast>, Pos),
}

impl Ast {
    pub fn pos(&self) -> Pos {
        match self {
            Ast::Num(_, p)
            | Ast::Str(_, p)
            | Ast::Bool(_, p)
            | Ast::Null(p)
            | Ast::Ref(_, p)
            | Ast::Unary(_, _, p)
            | Ast::Binary(_, _, _, p)
            | Ast::Call(_, _, p) => *p,
        }
    }
}

/// Bounds recursion so that hostile input (thousands of parentheses) cannot overflow the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
}

/// Binary operator levels, loosest first. `&` sits with `+`/`-` as in Salesforce's operator table.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["=", "==", "!=", "<>", "<", ">", "<=", ">="],
    &["+", "-", "&"],
    &["*", "/"],
    &["^"],
];

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn binary(&mut self, level: usize) -> Result<Ast, SyntaxError> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        let outer = self.depth;
        while let Token {
            tok: Tok::Op(op),
            pos,
        } = self.peek().clone()
        {
            if !ops.contains(&op) {
                break;
            }
            self.bump();
            // Each operator in a chain deepens the (left-leaning) tree that checking and evaluation recurse on.
            self.enter(pos)?;
            let right = self.binary(level + 1)?;
            left = Ast::Binary(op, Box::new(left), Box::new(right), pos);
        }
        self.depth = outer;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Ast, SyntaxError> {
        if let Token {
            tok: Tok::Op(op @ ("!" | "-" | "+")),
            pos,
        } = self.peek().clone()
        {
            self.bump();
            self.enter(pos)?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Unary(op, Box::new(operand), pos));
        }
        self.primary()
    }

    fn enter(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((pos, "formula nests too deeply".to_owned()));
        }
        Ok(())
    }

    fn expr(&mut self, pos: Pos) -> Result<Ast, SyntaxError> {
        self.enter(pos)?;
        let e = self.binary(0);
        self.depth -= 1;
        e
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        let Token { tok, pos } = self.bump();
        match tok {
            Tok::Num(n) => Ok(Ast::Num(n, pos)),
            Tok::Str(s) => Ok(Ast::Str(s, pos)),
            Tok::Open => {
                let inner = self.expr(pos)?;
                self.expect_close(pos)?;
                Ok(inner)
            }
            Tok::Ident(name) => {
                if self.peek().tok == Tok::Open {
                    self.bump();
                    if name.contains(['.', '$']) {
                        return Err((pos, format!("{name} is not a function name")));
                    }
                    let args = self.args(pos)?;
                    return Ok(Ast::Call(name.to_ascii_uppercase(), args, pos));
                }
                match name.to_ascii_uppercase().as_str() {
                    "TRUE" => Ok(Ast::Bool(true, pos)),
                    "FALSE" => Ok(Ast::Bool(false, pos)),
                    "NULL" => Ok(Ast::Null(pos)),
                    _ => Ok(Ast::Ref(name, pos)),
                }
            }
            Tok::End => Err((pos, "unexpected end of formula".to_owned())),
            Tok::Close => Err((pos, "unexpected ')'".to_owned())),
            Tok::Comma => Err((pos, "unexpected ','".to_owned())),
            Tok::Op(op) => Err((pos, format!("unexpected operator {op}"))),
        }
    }

    fn args(&mut self, open: Pos) -> Result<Vec<Ast>, SyntaxError> {
        let mut args = Vec::new();
        if self.peek().tok == Tok::Close {
            self.bump();
            return Ok(args);
        }
        loop {
            let pos = self.peek().pos;
            args.push(self.expr(pos)?);
            let Token { tok, pos } = self.bump();
            match tok {
                Tok::Comma => continue,
                Tok::Close => return Ok(args),
                Tok::End => return Err((open, "missing ')' for this call".to_owned())),
                _ => return Err((pos, "expected ',' or ')'".to_owned())),
            }
        }
    }

    fn expect_close(&mut self, open: Pos) -> Result<(), SyntaxError> {
        let Token { tok, pos } = self.bump();
        match tok {
            Tok::Close => Ok(()),
            Tok::End => Err((open, "missing ')' for this '('".to_owned())),
            _ => Err((pos, "expected ')'".to_owned())),
        }
    }
}

pub(crate) fn parse(src: &str) -> Result<Ast, SyntaxError> {
    let toks = lex(src)?;
    let mut parser = Parser {
        toks,
        at: 0,
        depth: 0,
    };
    let start = parser.peek().pos;
    if parser.peek().tok == Tok::End {
        return Err((start, "empty formula".to_owned()));
    }
    let ast = parser.expr(start)?;
    let Token { tok, pos } = parser.bump();
    if tok != Tok::End {
        return Err((pos, "unexpected text after the formula".to_owned()));
    }
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_per_line() {
        let toks = lex("AND(\n\tX__c, 'a')").unwrap();
        let positions: Vec<(u32, u32)> = toks.iter().map(|t| (t.pos.line, t.pos.column)).collect();
        assert_eq!(
            positions,
            vec![(1, 1), (1, 4), (2, 2), (2, 6), (2, 8), (2, 11), (2, 12)]
        );
    }

    #[test]
    fn precedence_follows_salesforce() {
        let ast = parse("a || b && c = 1 + 2").unwrap();
        let Ast::Binary("||", _, right, _) = ast else {
            panic!("{ast:?}")
        };
        let Ast::Binary("&&", _, cmp, _) = *right else {
            panic!()
        };
        let Ast::Binary("=", _, sum, _) = *cmp else {
            panic!()
        };
        assert!(matches!(*sum, Ast::Binary("+", _, _, _)));
    }

    #[test]
    fn strings_comments_and_escapes() {
        let ast = parse("/* note */ 'it\\'s' & \"\\\"q\\\"\"").unwrap();
        let Ast::Binary("&", l, r, _) = ast else {
            panic!()
        };
        assert_eq!(
            *l,
            Ast::Str(
                "it's".to_owned(),
                Pos {
                    line: 1,
                    column: 12
                }
            )
        );
        assert_eq!(
            *r,
            Ast::Str(
                "\"q\"".to_owned(),
                Pos {
                    line: 1,
                    column: 22
                }
            )
        );
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        assert_eq!(parse("AND(a, b").unwrap_err().0.column, 1);
        assert_eq!(parse("a = = b").unwrap_err().0.column, 5);
        assert_eq!(parse("'abc").unwrap_err().0.column, 1);
        assert_eq!(parse("a # b").unwrap_err().0.column, 3);
        assert_eq!(parse("").unwrap_err().1, "empty formula");
        assert!(parse(&"(".repeat(10_000)).is_err());
        assert!(parse(&vec!["1"; 10_000].join("+")).is_err());
        assert!(parse(&"!".repeat(10_000)).is_err());
        let deep = format!("{}TRUE{}", "NOT(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).is_ok());
    }
}
