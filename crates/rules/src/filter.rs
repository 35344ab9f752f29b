//! `booleanFilter`: "1 AND (2 OR 3)", "(1 OR 2) AND NOT 3" over 1-based criteria item numbers.

use crate::error::Pos;
use crate::value::EvalResult;

/// A parsed filter; item numbers are 0-based indexes here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    Item(usize),
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Num(usize),
    And,
    Or,
    Not,
    Open,
    Close,
    End,
}

pub(crate) type FilterError = (Pos, String);

fn tokenize(text: &str) -> Result<Vec<(Tok, Pos)>, FilterError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1u32, 0u32);
    while let Some(c) = chars.next() {
        column += 1;
        let pos = Pos { line, column };
        match c {
            '\n' => {
                line += 1;
                column = 0;
            }
            c if c.is_whitespace() => {}
            '(' => out.push((Tok::Open, pos)),
            ')' => out.push((Tok::Close, pos)),
            '0'..='9' => {
                let mut digits = String::from(c);
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                    column += 1;
                }
                let n = digits
                    .parse()
                    .map_err(|_| (pos, format!("{digits} is not a criteria item number")))?;
                out.push((Tok::Num(n), pos));
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
                    word.push(d);
                    chars.next();
                    column += 1;
                }
                let tok = match word.to_ascii_uppercase().as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => {
                        return Err((
                            pos,
                            format!(
                                "unexpected {word:?}; use numbers, AND, OR, NOT and parentheses"
                            ),
                        ));
                    }
                };
                out.push((tok, pos));
            }
            other => return Err((pos, format!("unexpected character {other:?}"))),
        }
    }
    out.push((
        Tok::End,
        Pos {
            line,
            column: column + 1,
        },
    ));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
    items: usize,
    used: Vec<bool>,
}

impl Parser {
    fn peek(&self) -> (Tok, Pos) {
        self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> (Tok, Pos) {
        let t = self.peek();
        self.at += 1;
        t
    }

    /// A sequence of terms joined by one kind of connective. Salesforce refuses "1 AND 2 OR 3" rather
    /// than pick a precedence, and so does casewire.
    fn expr(&mut self) -> Result<Filter, FilterError> {
        let first = self.term()?;
        let mut terms = vec![first];
        let mut joiner: Option<Tok> = None;
        loop {
            let (tok, pos) = self.peek();
            if !matches!(tok, Tok::And | Tok::Or) {
                break;
            }
            if joiner.is_some_and(|j| j != tok) {
                return Err((pos, "AND and OR mixed without parentheses".to_owned()));
            }
            joiner = Some(tok);
            self.bump();
            terms.push(self.term()?);
        }
        Ok(match joiner {
            None => terms.pop().unwrap_or(Filter::And(Vec::new())),
            Some(Tok::Or) => Filter::Or(terms),
            Some(_) => Filter::And(terms),
        })
    }

    fn term(&mut self) -> Result<Filter, FilterError> {
        let (tok, pos) = self.bump();
        match tok {
            Tok::Not => Ok(Filter::Not(Box::new(self.term()?))),
            Tok::Open => {
                let inner = self.expr()?;
                match self.bump() {
                    (Tok::Close, _) => Ok(inner),
                    (_, pos) => Err((pos, "missing closing parenthesis".to_owned())),
                }
            }
            Tok::Num(n) => {
                if n == 0 || n > self.items {
                    return Err((
                        pos,
                        format!("{n} is not a criteria item (the rule has {})", self.items),
                    ));
                }
                self.used[n - 1] = true;
                Ok(Filter::Item(n - 1))
            }
            Tok::End => Err((pos, "unexpected end".to_owned())),
            Tok::And | Tok::Or | Tok::Close => {
                Err((pos, "expected an item number, NOT or '('".to_owned()))
            }
        }
    }
}

/// Parses `text` for a rule with `items` criteria items. Every item must be used, as Salesforce requires.
pub(crate) fn parse(text: &str, items: usize) -> Result<Filter, FilterError> {
    let toks = tokenize(text)?;
    let mut parser = Parser {
        toks,
        at: 0,
        items,
        used: vec![false; items],
    };
    let filter = parser.expr()?;
    let (tok, pos) = parser.peek();
    if tok != Tok::End {
        return Err((pos, "unexpected text after the expression".to_owned()));
    }
    if let Some(unused) = parser.used.iter().position(|u| !u) {
        return Err((
            Pos { line: 1, column: 1 },
            format!("criteria item {} is not used", unused + 1),
        ));
    }
    Ok(filter)
}

impl Filter {
    /// Evaluates with `item(i)` giving criteria item `i` (0-based).
    pub fn eval(&self, item: &mut dyn FnMut(usize) -> EvalResult<bool>) -> EvalResult<bool> {
        Ok(match self {
            Filter::Item(i) => item(*i)?,
            Filter::Not(inner) => !inner.eval(item)?,
            Filter::And(terms) => {
                for t in terms {
                    if !t.eval(item)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Or(terms) => {
                for t in terms {
                    if t.eval(item)? {
                        return Ok(true);
                    }
                }
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(filter: &str, n: usize, values: &[bool]) -> bool {
        let f = parse(filter, n).unwrap();
        f.eval(&mut |i| Ok(values[i])).unwrap()
    }

    #[test]
    fn precedence_by_parentheses_and_not() {
        assert!(truth("1 AND (2 OR 3)", 3, &[true, false, true]));
        assert!(!truth("1 AND (2 OR 3)", 3, &[false, true, true]));
        assert!(truth("(1 OR 2) AND NOT 3", 3, &[false, true, false]));
        assert!(!truth("(1 OR 2) AND NOT 3", 3, &[true, true, true]));
        assert!(truth("1 and (2 or 3) and 4", 4, &[true, false, true, true]));
        assert!(truth("NOT (1 AND 2)", 2, &[true, false]));
    }

    #[test]
    fn refusals_carry_positions() {
        assert_eq!(parse("1 AND 2 OR 3", 3).unwrap_err().0.column, 9);
        assert_eq!(parse("1 AND 4", 3).unwrap_err().0.column, 7);
        assert_eq!(parse("1 AND (2", 2).unwrap_err().0.column, 9);
        assert!(
            parse("1 AND 2", 3)
                .unwrap_err()
                .1
                .contains("item 3 is not used")
        );
        assert_eq!(parse("1 XOR 2", 2).unwrap_err().0.column, 3);
        assert!(parse("", 0).is_err());
        assert_eq!(parse("1 2", 2).unwrap_err().0.column, 3);
    }
}
