//! SQL text with bound parameters: checked identifiers, psycopg-style `%s` placeholders, and
//! rendering with casts for the parameters the host sends as text.

use serde_json::Value;

use super::DbError;
use super::tenantdb::quote_ident;

/// PostgreSQL's limit on parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// A statement: text with a parameter between each two pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pieces: Vec<String>,
    /// The parameters, in placeholder order.
    pub params: Vec<Value>,
}

impl Sql {
    /// A statement that starts with `text`.
    pub fn new(text: &str) -> Self {
        Sql {
            pieces: vec![text.to_string()],
            params: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.pieces
            .last_mut()
            .expect("a statement has at least one piece")
            .push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn param(&mut self, value: Value) -> Result<&mut Self, DbError> {
        if self.params.len() >= MAX_PARAMS {
            return Err(DbError::Invalid(format!(
                "more than {MAX_PARAMS} parameters in one statement"
            )));
        }
        self.params.push(value);
        self.pieces.push(String::new());
        Ok(self)
    }

    /// The SQL text, `$n` for each parameter, written `$n::text::TYPE` where `casts[n - 1]`
    /// names a type (the parameter then travels as text and PostgreSQL parses it).
    pub fn render(&self, casts: &[Option<String>]) -> String {
        let mut out = self.pieces[0].clone();
        for (i, piece) in self.pieces[1..].iter().enumerate() {
            out.push_str(&format!("${}", i + 1));
            if let Some(Some(ty)) = casts.get(i) {
                out.push_str(&format!("::text::{ty}"));
            }
            out.push_str(piece);
        }
        out
    }
}

/// Checks and quotes a schema, table or column name: letters, digits, `_` and `$`, not
/// starting with a digit, at most 63 bytes. Anything else is refused, not escaped.
pub fn identifier(name: &str) -> Result<String, DbError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if valid {
        Ok(quote_ident(name))
    } else {
        Err(DbError::Invalid(format!("invalid identifier {name:?}")))
    }
}

/// Parses a query with psycopg-style `%s` placeholders (`%%` is a literal `%`), binding
/// `params` to them in order. Placeholders count only in SQL itself: never inside string
/// literals (`'...'`, `E'...'` with backslash escapes), quoted identifiers, dollar-quoted bodies
/// (`$$...$$`, `$fn$...$fn$`) or comments (`-- ...`, nested `/* ... */`), which are copied as
/// they are.
pub fn with_placeholders(query: &str, params: Vec<Value>) -> Result<Sql, DbError> {
    let mut sql = Sql::new("");
    let given = params.len();
    let mut params = params.into_iter();
    let mut count = 0;
    let bytes = query.as_bytes();
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        let skip = match bytes[i] {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                quoted_end(bytes, i, b'\'', escapes)
            }
            b'"' => quoted_end(bytes, i, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => Some(
                bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n + 1),
            ),
            b'/' if bytes.get(i + 1) == Some(&b'*') => block_comment_end(bytes, i),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => dollar_quote_end(bytes, i),
            b'%' => {
                sql.push(&query[copied..i]);
                match bytes.get(i + 1) {
                    Some(b's') => {
                        count += 1;
                        sql.param(params.next().unwrap_or(Value::Null))?;
                    }
                    Some(b'%') => {
                        sql.push("%");
                    }
                    _ => {
                        let next = query[i + 1..].chars().next();
                        return Err(DbError::Invalid(format!(
                            "unsupported placeholder %{}: use %s (or %% for a literal %)",
                            next.map(String::from).unwrap_or_default()
                        )));
                    }
                }
                i += 2;
                copied = i;
                continue;
            }
            _ => None,
        };
        i = skip.unwrap_or(i + 1);
    }
    sql.push(&query[copied..]);
    if given != count {
        return Err(DbError::Invalid(format!(
            "the query has {count} placeholders but {given} params were given"
        )));
    }
    Ok(sql)
}

/// Letters, digits, `_`, `$` and any non-ASCII byte: what continues an identifier (so the `$`
/// of `a$b` or the `E` of `fee'` starts nothing).
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The index after a quoted run that starts at `start` with `quote` (a doubled quote stays
/// inside; with `escapes`, so does a backslash-escaped one). An unterminated run goes to the end.
fn quoted_end(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    Some(bytes.len())
}

/// The index after a (nested) block comment starting at `start`.
fn block_comment_end(bytes: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    Some(bytes.len())
}

/// The index after a dollar-quoted body starting at `start` (`$tag$ ... $tag$`), or `None` if
/// the `$` opens none (`$1`, a lone `$`).
fn dollar_quote_end(bytes: &[u8], start: usize) -> Option<usize> {
    let tag_len = bytes[start + 1..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))?;
    let close = start + 1 + tag_len;
    if bytes.get(close) != Some(&b'$') || bytes.get(start + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let delimiter = &bytes[start..=close];
    let body = close + 1;
    Some(
        bytes[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(bytes.len(), |n| body + n + delimiter.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_skip_literals() {
        let sql = with_placeholders(
            "SELECT '%s', \"a%s\" FROM t WHERE a = %s AND b LIKE 'x%%' OR c = %s",
            vec![json!(1), json!("x")],
        )
        .unwrap();
        assert_eq!(
            sql.render(&[]),
            "SELECT '%s', \"a%s\" FROM t WHERE a = $1 AND b LIKE 'x%%' OR c = $2"
        );
        assert_eq!(sql.params, vec![json!(1), json!("x")]);
        assert_eq!(
            with_placeholders("a %% b", vec![]).unwrap().render(&[]),
            "a % b"
        );
        assert!(with_placeholders("a = %d", vec![]).is_err());
        assert!(with_placeholders("a = %s", vec![]).is_err());
        assert!(with_placeholders("a = %s", vec![json!(1), json!(2)]).is_err());
    }

    #[test]
    fn placeholders_skip_dollar_quotes_comments_and_escapes() {
        let cases = [
            // Function bodies are copied, not rewritten.
            (
                "SELECT $$ %s $$, %s, $fn$ a %s $$ %s $fn$",
                "SELECT $$ %s $$, $1, $fn$ a %s $$ %s $fn$",
            ),
            // A quote in a comment opens nothing.
            ("SELECT 1 -- it's\n, %s", "SELECT 1 -- it's\n, $1"),
            (
                "SELECT /* it's /* nested */ %s */ %s",
                "SELECT /* it's /* nested */ %s */ $1",
            ),
            // E'' strings escape quotes with a backslash.
            ("SELECT E'\\' %s', %s", "SELECT E'\\' %s', $1"),
            // ...and other strings do not.
            ("SELECT 'a\\', %s", "SELECT 'a\\', $1"),
            ("SELECT fee'%s', %s", "SELECT fee'%s', $1"),
            // `$1` and `a$b` are no dollar quotes.
            ("SELECT a$b, %s", "SELECT a$b, $1"),
            ("SELECT 'x', %s -- end", "SELECT 'x', $1 -- end"),
        ];
        for (query, rendered) in cases {
            let sql =
                with_placeholders(query, vec![json!(1)]).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(sql.render(&[]), rendered, "{query}");
        }
        // Unterminated quotes swallow the rest, so their placeholders do not count.
        assert!(with_placeholders("SELECT $$ %s", vec![json!(1)]).is_err());
        assert_eq!(
            with_placeholders("SELECT 'é', %s", vec![json!(1)])
                .unwrap()
                .render(&[]),
            "SELECT 'é', $1"
        );
    }

    #[test]
    fn casts_render_after_their_placeholder() {
        let mut sql = Sql::new("INSERT INTO t VALUES (");
        sql.param(json!(1)).unwrap().push(", ");
        sql.param(json!("1 day")).unwrap().push(")");
        assert_eq!(
            sql.render(&[None, Some("\"pg_catalog\".\"interval\"".into())]),
            "INSERT INTO t VALUES ($1, $2::text::\"pg_catalog\".\"interval\")"
        );
    }

    #[test]
    fn identifiers_are_checked_not_escaped() {
        assert_eq!(identifier("accounts").unwrap(), "\"accounts\"");
        for bad in [
            "x\"; drop table t; --",
            "",
            "1a",
            "a b",
            "a.b",
            &"x".repeat(64),
        ] {
            assert!(identifier(bad).is_err(), "{bad}");
        }
    }
}
