//! Guest values ↔ PostgreSQL: identifiers, `%s` placeholders and parameter binding.
//!
//! Parameters are always bound, never interpolated: each JSON value is encoded in the type
//! PostgreSQL inferred for its placeholder.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::DbError;
use super::tenantdb::quote_ident;

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

/// Rewrites psycopg-style `%s` placeholders to `$1, $2, ...` (`%%` is a literal `%`), outside
/// string literals and quoted identifiers; returns the SQL and the number of placeholders.
pub fn placeholders(sql: &str) -> Result<(String, usize), DbError> {
    let mut out = String::with_capacity(sql.len());
    let mut count = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '%') => match chars.next() {
                Some('s') => {
                    count += 1;
                    out.push_str(&format!("${count}"));
                }
                Some('%') => out.push('%'),
                other => {
                    return Err(DbError::Invalid(format!(
                        "unsupported placeholder %{}: use %s (or %% for a literal %)",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            (None, c) => out.push(c),
        }
    }
    Ok((out, count))
}

/// A JSON parameter, encoded at bind time in the type PostgreSQL inferred for it.
#[derive(Debug)]
pub struct Param(pub Value);

type BoxError = Box<dyn Error + Sync + Send>;

fn unsupported(value: &Value, ty: &Type) -> BoxError {
    format!("cannot bind {value} as {ty}: cast the placeholder, e.g. %s::text::{ty}",).into()
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = &self.0;
        match *ty {
            _ if value.is_null() => Ok(IsNull::Yes),
            Type::JSON | Type::JSONB => value.to_sql(ty, out),
            Type::BOOL => value
                .as_bool()
                .ok_or_else(|| unsupported(value, ty))?
                .to_sql(ty, out),
            Type::INT2 => i16::try_from(int(value, ty)?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(int(value, ty)?)?.to_sql(ty, out),
            Type::INT8 => int(value, ty)?.to_sql(ty, out),
            Type::FLOAT4 => {
                (value.as_f64().ok_or_else(|| unsupported(value, ty))? as f32).to_sql(ty, out)
            }
            Type::FLOAT8 => value
                .as_f64()
                .ok_or_else(|| unsupported(value, ty))?
                .to_sql(ty, out),
            Type::NUMERIC => encode_numeric(&number_text(value, ty)?, out),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => match value {
                Value::String(text) => text.as_str().to_sql(&Type::TEXT, out),
                Value::Number(n) => n.to_string().as_str().to_sql(&Type::TEXT, out),
                Value::Bool(b) => b.to_string().as_str().to_sql(&Type::TEXT, out),
                other => other.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            _ => Err(unsupported(value, ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn int(value: &Value, ty: &Type) -> Result<i64, BoxError> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| unsupported(value, ty)),
        Value::String(s) => s.trim().parse().map_err(|_| unsupported(value, ty)),
        _ => Err(unsupported(value, ty)),
    }
}

/// Decimals travel from the guest as `{"$decimal": "12.50"}`, plain numbers or strings.
fn number_text(value: &Value, ty: &Type) -> Result<String, BoxError> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Object(map) => match map.get("$decimal") {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(unsupported(value, ty)),
        },
        _ => Err(unsupported(value, ty)),
    }
}

/// PostgreSQL's binary `numeric`: base-10000 digits with weight, sign and display scale.
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    let bad = || -> BoxError { format!("{text:?} is not a decimal number").into() };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if unsigned.eq_ignore_ascii_case("nan") {
        out.put_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]);
        return Ok(IsNull::No);
    }
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        || frac_part.len() > 1000
        || int_part.len() > 1000
    {
        return Err(bad());
    }
    let int_part = int_part.trim_start_matches('0');
    // Left-pad the integer part and right-pad the fraction to whole base-10000 groups.
    let int_padded = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
    let frac_padded = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
    let mut groups: Vec<i16> = int_padded
        .as_bytes()
        .chunks(4)
        .chain(frac_padded.as_bytes().chunks(4))
        .map(|chunk| {
            std::str::from_utf8(chunk)
                .unwrap_or("0")
                .parse()
                .unwrap_or(0)
        })
        .collect();
    let mut weight = (int_padded.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(frac_part.len() as u16);
    for group in groups {
        out.put_i16(group);
    }
    Ok(IsNull::No)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_skip_literals() {
        let (sql, n) =
            placeholders("SELECT '%s', \"a%s\" FROM t WHERE a = %s AND b LIKE 'x%%' OR c = %s")
                .unwrap();
        assert_eq!(
            sql,
            "SELECT '%s', \"a%s\" FROM t WHERE a = $1 AND b LIKE 'x%%' OR c = $2"
        );
        assert_eq!(n, 2);
        assert_eq!(placeholders("a %% b").unwrap().0, "a % b");
        assert!(placeholders("a = %d").is_err());
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

    #[test]
    fn numerics_encode_like_postgres() {
        let encode = |text: &str| {
            let mut out = BytesMut::new();
            encode_numeric(text, &mut out).unwrap();
            out.to_vec()
        };
        // 12.5: ndigits 2, weight 0, sign 0, dscale 1, digits [12, 5000].
        assert_eq!(encode("12.5"), [0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]);
        // -10000: ndigits 1, weight 1, negative, dscale 0, digits [1].
        assert_eq!(encode("-10000"), [0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1]);
        assert_eq!(encode("0.00"), [0, 0, 0, 0, 0, 0, 0, 2]);
    }
}
