//! Guest values → PostgreSQL parameters.
//!
//! Parameters are always bound, never interpolated. A parameter whose inferred type the host
//! encodes itself (bool, integers, floats, numeric, text, json, bytea) is sent in that type's
//! binary form; any other (dates, times, uuid, interval, arrays, enums, ...) is cast from text
//! in the statement (`$1::text::date`) and sent as text, so PostgreSQL parses it.

use std::error::Error;

use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::tenantdb::quote_ident;

/// Whether the host encodes parameters of type `ty` itself; others are cast from text.
pub fn encoded_natively(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::JSON
            | Type::JSONB
            | Type::BYTEA
    )
}

/// The cast for a parameter of type `ty` that travels as text, e.g. `"pg_catalog"."date"`.
pub fn text_cast(ty: &Type) -> String {
    format!("{}.{}", quote_ident(ty.schema()), quote_ident(ty.name()))
}

/// A JSON parameter, encoded at bind time in the type PostgreSQL inferred for it.
#[derive(Debug)]
pub struct Param(pub Value);

type BoxError = Box<dyn Error + Sync + Send>;

fn unsupported(value: &Value, ty: &Type) -> BoxError {
    let shown: String = value.to_string().chars().take(80).collect();
    format!("cannot bind {shown} as {ty}").into()
}

/// A value as PostgreSQL's text input for its type expects it.
fn text_form(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => array_literal(items),
        Value::Object(map) => match (map.get("$decimal"), map.get("$bytes")) {
            (Some(Value::String(decimal)), _) => decimal.clone(),
            (_, Some(Value::String(b64))) => {
                match base64::engine::general_purpose::STANDARD.decode(b64) {
                    Ok(bytes) => format!("\\x{}", hex::encode(bytes)),
                    Err(_) => value.to_string(),
                }
            }
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// A value for a json column: the guest's `{"$decimal": ...}` become numbers and
/// `{"$bytes": ...}` their base64 text.
fn untagged(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(untagged).collect()),
        Value::Object(map) if map.len() == 1 => match map.iter().next() {
            Some((tag, Value::String(text))) if tag == "$decimal" => text
                .parse::<serde_json::Number>()
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(text.clone())),
            Some((tag, Value::String(text))) if tag == "$bytes" => Value::String(text.clone()),
            _ => Value::Object(map.iter().map(|(k, v)| (k.clone(), untagged(v))).collect()),
        },
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), untagged(v))).collect())
        }
        other => other.clone(),
    }
}

/// A JSON list as a PostgreSQL array literal: `{1,"a b",NULL,{2,3}}`.
fn array_literal(items: &[Value]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|item| match item {
            Value::Null => "NULL".to_string(),
            Value::Array(inner) => array_literal(inner),
            other => {
                let text = text_form(other);
                format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect();
    format!("{{{}}}", elements.join(","))
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = &self.0;
        match *ty {
            _ if value.is_null() => Ok(IsNull::Yes),
            Type::JSON | Type::JSONB => untagged(value).to_sql(ty, out),
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
            Type::BYTEA => match value {
                Value::Object(map) => match map.get("$bytes").and_then(Value::as_str) {
                    Some(b64) => base64::engine::general_purpose::STANDARD
                        .decode(b64)?
                        .to_sql(ty, out),
                    None => Err(unsupported(value, ty)),
                },
                Value::String(text) => text.as_bytes().to_sql(ty, out),
                _ => Err(unsupported(value, ty)),
            },
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                text_form(value).as_str().to_sql(&Type::TEXT, out)
            }
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
    fn arrays_become_array_literals() {
        let value = serde_json::json!([1, "a \"b\" \\c", null, [2, 3], {"$decimal": "1.50"}]);
        assert_eq!(
            text_form(&value),
            r#"{"1","a \"b\" \\c",NULL,{"2","3"},"1.50"}"#
        );
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
