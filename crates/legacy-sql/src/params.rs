//! Named parameters for PostgreSQL: `:Status` in a configured statement becomes `$1`, the way SQLite
//! reads `:Status` natively. The rewrite leaves alone what PostgreSQL would not read as a parameter:
//! string literals (`'...'`, `E'...'`, `$tag$...$tag$`), quoted identifiers, comments and the `::` cast.

/// The statement with `$n` placeholders and the parameter names in `$n` order (a name used twice gets
/// one number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    pub names: Vec<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Rewrites `:Name` parameters to `$n`. Refuses positional `$1` placeholders (they would collide with
/// the numbering) and unterminated literals or comments (the statement is broken).
pub fn rewrite_named(sql: &str) -> Result<Rewritten, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    let unterminated = |what: &str| format!("unterminated {what} in {sql:?}");
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                // E'...' strings take backslash escapes; plain ones only double the quote.
                let backslash_escapes = i > 0
                    && matches!(chars[i - 1], 'e' | 'E')
                    && (i < 2 || !is_ident_char(chars[i - 2]));
                let start = i;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(unterminated("string literal")),
                        Some('\\') if backslash_escapes => i += 2,
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                out.extend(&chars[start..i.min(chars.len())]);
            }
            '"' => {
                let start = i;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(unterminated("quoted identifier")),
                        Some('"') if chars.get(i + 1) == Some(&'"') => i += 2,
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                out.extend(&chars[start..i]);
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let start = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                out.extend(&chars[start..i]);
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = i;
                let mut depth = 0usize;
                loop {
                    if i >= chars.len() {
                        return Err(unterminated("comment"));
                    }
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.extend(&chars[start..i]);
            }
            '$' if chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && (i == 0 || !is_ident_char(chars[i - 1])) =>
            {
                return Err(format!(
                    "positional parameter ${} in {sql:?}: use :FieldName parameters",
                    chars[i + 1]
                ));
            }
            '$' if i == 0 || !is_ident_char(chars[i - 1]) => {
                // A dollar-quoted string starts with $tag$ (tag empty or an identifier).
                let mut j = i + 1;
                while j < chars.len() && is_ident_char(chars[j]) {
                    j += 1;
                }
                if chars.get(j) == Some(&'$') {
                    let tag: Vec<char> = chars[i..=j].to_vec();
                    let body_start = j + 1;
                    let end = (body_start..chars.len())
                        .find(|&k| chars[k..].starts_with(&tag))
                        .ok_or_else(|| unterminated("dollar-quoted string"))?;
                    let stop = end + tag.len();
                    out.extend(&chars[i..stop]);
                    i = stop;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push_str("::");
                i += 2;
            }
            ':' if chars.get(i + 1).is_some_and(|c| is_ident_start(*c)) => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_ident_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                let index = match names.iter().position(|n| *n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name);
                        names.len()
                    }
                };
                out.push('$');
                out.push_str(&index.to_string());
                i = j;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Rewritten { sql: out, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(sql: &str) -> (String, Vec<String>) {
        let r = rewrite_named(sql).unwrap();
        (r.sql, r.names)
    }

    #[test]
    fn names_become_numbers_once_each() {
        assert_eq!(
            rw(
                "INSERT INTO t VALUES (:Id, :Status, :Id) ON CONFLICT (id) DO UPDATE SET s = :Status"
            ),
            (
                "INSERT INTO t VALUES ($1, $2, $1) ON CONFLICT (id) DO UPDATE SET s = $2".into(),
                vec!["Id".into(), "Status".into()]
            )
        );
        assert_eq!(
            rw("SELECT :Custom_Field__c::timestamptz, x::text FROM t"),
            (
                "SELECT $1::timestamptz, x::text FROM t".into(),
                vec!["Custom_Field__c".into()]
            )
        );
    }

    #[test]
    fn literals_identifiers_and_comments_are_left_alone() {
        let sql = "SELECT ':a', 'it''s :b', E'\\' :c', \"col:d\", $$ :e $$, $x$ :f $x$ -- :g\n, :h /* :i /* :j */ */ FROM t";
        let (out, names) = rw(sql);
        assert_eq!(names, vec!["h".to_string()]);
        assert_eq!(out, sql.replace(":h", "$1"));
        assert_eq!(rw("SELECT a[1:2] FROM t").1, Vec::<String>::new());
    }

    #[test]
    fn refuses_positional_and_unterminated() {
        assert!(
            rewrite_named("SELECT $1")
                .unwrap_err()
                .contains("positional")
        );
        assert!(
            rewrite_named("SELECT 'open")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            rewrite_named("SELECT $$ open")
                .unwrap_err()
                .contains("dollar")
        );
        assert!(
            rewrite_named("SELECT /* open")
                .unwrap_err()
                .contains("comment")
        );
        assert!(
            rewrite_named("SELECT \"open")
                .unwrap_err()
                .contains("identifier")
        );
        // A dollar inside an identifier is not a quote.
        assert_eq!(rw("SELECT a$b FROM t").0, "SELECT a$b FROM t");
    }
}
