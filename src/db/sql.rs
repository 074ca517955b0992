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

/// Parses a query with psycopg-style `%s` placeholders (`%%` is a literal `%`), outside
/// string literals and quoted identifiers, binding `params` to them in order.
pub fn with_placeholders(query: &str, params: Vec<Value>) -> Result<Sql, DbError> {
    let mut sql = Sql::new("");
    let mut text = String::with_capacity(query.len());
    let given = params.len();
    let mut params = params.into_iter();
    let mut count = 0;
    let mut quote: Option<char> = None;
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                text.push(c);
            }
            (Some(_), c) => text.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                text.push(c);
            }
            (None, '%') => match chars.next() {
                Some('s') => {
                    count += 1;
                    sql.push(&std::mem::take(&mut text));
                    sql.param(params.next().unwrap_or(Value::Null))?;
                }
                Some('%') => text.push('%'),
                other => {
                    return Err(DbError::Invalid(format!(
                        "unsupported placeholder %{}: use %s (or %% for a literal %)",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            (None, c) => text.push(c),
        }
    }
    sql.push(&text);
    if given != count {
        return Err(DbError::Invalid(format!(
            "the query has {count} placeholders but {given} params were given"
        )));
    }
    Ok(sql)
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
