//! Tokens of the SOQL subset, with byte offsets for error positions.

use crate::Op;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Names and keywords alike; the parser tells them apart.
    Ident(String),
    Text(String),
    Number(String),
    Date(String),
    DateTime(String),
    Op(Op),
    Comma,
    Dot,
    LParen,
    /// Any other character: the parser reports it as unexpected.
    Other,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

type LexError = (usize, String);

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    pub fn tokens(mut self) -> Result<Vec<Token>, LexError> {
        let mut out = Vec::new();
        loop {
            while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            let start = self.at;
            let Some(&b) = self.bytes.get(self.at) else {
                out.push(Token {
                    tok: Tok::Eof,
                    start,
                    end: start,
                });
                return Ok(out);
            };
            let tok = match b {
                b'\'' => self.string()?,
                b',' => self.one(Tok::Comma),
                b'.' => self.one(Tok::Dot),
                b'(' => self.one(Tok::LParen),
                b'=' => self.one(Tok::Op(Op::Eq)),
                b'!' if self.bytes.get(start + 1) == Some(&b'=') => self.two(Tok::Op(Op::Ne)),
                b'<' => match self.bytes.get(start + 1) {
                    Some(b'=') => self.two(Tok::Op(Op::Le)),
                    Some(b'>') => self.two(Tok::Op(Op::Ne)),
                    _ => self.one(Tok::Op(Op::Lt)),
                },
                b'>' => match self.bytes.get(start + 1) {
                    Some(b'=') => self.two(Tok::Op(Op::Ge)),
                    _ => self.one(Tok::Op(Op::Gt)),
                },
                b'0'..=b'9' | b'-' | b'+' => self.number_or_date(),
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    while self
                        .bytes
                        .get(self.at)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    {
                        self.at += 1;
                    }
                    Tok::Ident(self.text[start..self.at].to_owned())
                }
                _ => {
                    // One whole character, so that the error shows it intact.
                    let len = self.text[start..].chars().next().map_or(1, char::len_utf8);
                    self.at += len;
                    Tok::Other
                }
            };
            out.push(Token {
                tok,
                start,
                end: self.at,
            });
        }
    }

    fn one(&mut self, tok: Tok) -> Tok {
        self.at += 1;
        tok
    }

    fn two(&mut self, tok: Tok) -> Tok {
        self.at += 2;
        tok
    }

    /// `'...'` with SOQL's backslash escapes (`\'`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and `\_`
    /// / `\%` kept as written since they only mean something in LIKE).
    fn string(&mut self) -> Result<Tok, LexError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(c) = rest.chars().next() else {
                return Err((start, "unterminated string literal".to_owned()));
            };
            self.at += c.len_utf8();
            match c {
                '\'' => return Ok(Tok::Text(out)),
                '\\' => {
                    let Some(e) = self.text[self.at..].chars().next() else {
                        return Err((start, "unterminated string literal".to_owned()));
                    };
                    let escape_at = self.at - 1;
                    self.at += e.len_utf8();
                    match e {
                        '\'' | '"' | '\\' => out.push(e),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '_' | '%' => {
                            out.push('\\');
                            out.push(e);
                        }
                        other => {
                            return Err((
                                escape_at,
                                format!("invalid escape sequence '\\{other}' in a string literal"),
                            ));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    /// Numbers (`42`, `-1.5`, `+3`), dates (`2024-03-14`) and date-times
    /// (`2024-03-14T09:26:53Z`, `2024-03-14T09:26:53.000+01:00`).
    fn number_or_date(&mut self) -> Tok {
        let start = self.at;
        self.at += 1;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'+'))
        {
            self.at += 1;
        }
        let word = &self.text[start..self.at];
        if is_date(word) {
            Tok::Date(word.to_owned())
        } else if is_datetime(word) {
            Tok::DateTime(word.to_owned())
        } else if is_number(word) {
            Tok::Number(word.to_owned())
        } else {
            Tok::Other
        }
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3 && digits(parts[0], 4) && digits(parts[1], 2) && digits(parts[2], 2)
}

fn is_datetime(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], Some(&time[i + 1..]))
    } else {
        return false;
    };
    if let Some(zone) = zone {
        let ok = zone
            .split_once(':')
            .is_some_and(|(h, m)| digits(h, 2) && digits(m, 2));
        if !ok {
            return false;
        }
    }
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let hms: Vec<&str> = hms.split(':').collect();
    hms.len() == 3
        && hms.iter().all(|p| digits(p, 2))
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !body.ends_with('.')
}
