//! A fetch's rows as the JSON a handler's response would carry, written by the host: exactly
//! the bytes the SDK's Python path produces (`_rows.rows(...)` with the same options, then the
//! driver's `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`), without a Python
//! object per value. A handler that returns its rows untouched then costs no parsing and no
//! encoding in the guest, where both run about 3.5 times slower than natively.
//!
//! Where the Python path would do something this code does not reproduce for certain (a
//! composite value, a timestamp Python cannot read, duplicate column names), [`render`]
//! declines and the rows go to Python as before. `guest-sdk/pq/_rows.py` is the reference; a
//! test holds the two against each other over every type of the type table.

mod json;
mod pyfmt;

use serde::Deserialize;

use self::json::Json;

#[cfg(test)]
impl RenderOptions {
    /// The SDK's defaults (`fetch(...)` with no options), for tests.
    pub(crate) fn sdk_defaults() -> Self {
        RenderOptions {
            python_types: true,
            datetime_as_string: true,
            utc: true,
            offset_seconds: 0,
            fillna: None,
            fillnat: None,
        }
    }
}

/// The fetch options that change how values are written (`fetch(...)`'s keyword arguments).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenderOptions {
    /// `enable_python_types`.
    pub python_types: bool,
    /// `enable_datetime_as_string`.
    pub datetime_as_string: bool,
    /// Whether `tz` is UTC.
    pub utc: bool,
    /// `tz`'s offset east of UTC, in seconds.
    pub offset_seconds: i64,
    /// `fillna_with`, as the driver's JSON encoder writes it, or none.
    pub fillna: Option<String>,
    /// `fillnat_with`, likewise.
    pub fillnat: Option<String>,
}

#[derive(Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    pg_type: String,
}

#[derive(Deserialize)]
struct Result<'a> {
    columns: Vec<Column>,
    #[serde(borrow)]
    rows: Vec<&'a serde_json::value::RawValue>,
}

/// The rows of a fetch result (`{"columns", "rows"}`, as `db::results` shapes it) as the
/// response JSON the Python path would write, and how many there are; `None` to leave them
/// to Python.
pub fn render(result: &[u8], options: &RenderOptions) -> Option<(Vec<u8>, usize)> {
    let result: Result<'_> = serde_json::from_slice(result).ok()?;
    let mut names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return None; // a dict keeps one of them: Python's business
    }
    let kinds: Vec<Kind> = result
        .columns
        .iter()
        .map(|c| Kind::of(&c.pg_type, options))
        .collect();
    let temporal: Vec<bool> = result
        .columns
        .iter()
        .map(|c| is_temporal(&c.pg_type))
        .collect();
    let mut out = String::with_capacity(result.rows.iter().map(|r| r.get().len() + 8).sum());
    out.push('[');
    for (i, row) in result.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Json::Object(members) = json::parse(row.get())? else {
            return None;
        };
        if members.len() != kinds.len() {
            return None;
        }
        out.push('{');
        for (j, (key, value)) in members.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_string(key, &mut out)?;
            out.push(':');
            if *value == Json::Null {
                let fill = match (&options.fillnat, temporal[j]) {
                    (Some(fill), true) => Some(fill),
                    _ => options.fillna.as_ref(),
                };
                out.push_str(fill.map_or("null", String::as_str));
            } else {
                write_value(kinds[j], value, options, &mut out)?;
            }
        }
        out.push('}');
    }
    out.push(']');
    Some((out.into_bytes(), result.rows.len()))
}

fn is_temporal(pg_type: &str) -> bool {
    matches!(
        pg_type.trim_start_matches('_'),
        "date" | "time" | "timetz" | "timestamp" | "timestamptz"
    )
}

/// What the SDK does to a column's values (`_rows._converter`), and whether they are arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    scalar: Scalar,
    array: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    /// Left as JSON gave it (`_NEVER_FRACTIONAL`, or no converter): numbers with a fraction
    /// are Decimals that `json.dumps` writes as an int when integral, else as a float.
    Same,
    /// No converter, but not in `_NEVER_FRACTIONAL` either (`_untyped_number`): a number with
    /// a fraction becomes a float.
    Untyped,
    Int,
    Float,
    /// Decimal in, int-or-float out (both `enable_python_types` settings write the same).
    Numeric,
    Bytea,
    Json,
    Date,
    Time,
    Timestamp,
    /// Converted to the fetch's zone.
    Timestamptz,
}

impl Kind {
    fn of(pg_type: &str, options: &RenderOptions) -> Kind {
        let array = pg_type.starts_with('_');
        let base = pg_type.trim_start_matches('_');
        let objects = options.python_types && !options.datetime_as_string;
        let scalar = match base {
            "json" | "jsonb" => Scalar::Json,
            "float4" | "float8" => Scalar::Float,
            "int2" | "int4" | "int8" | "oid" => Scalar::Int,
            "numeric" => Scalar::Numeric,
            "bytea" => Scalar::Bytea,
            "timestamptz" if options.python_types || !options.utc => Scalar::Timestamptz,
            "timestamp" if objects => Scalar::Timestamp,
            "date" if objects => Scalar::Date,
            "time" if options.python_types => Scalar::Time,
            // An array without a converter is handed to `_untyped_number` whole, which leaves
            // a list alone: its numbers are Decimals, written as Decimals are.
            _ if array => Scalar::Same,
            "text" | "varchar" | "bpchar" | "char" | "name" | "bool" | "uuid" | "date" | "time"
            | "timetz" | "timestamp" | "timestamptz" | "interval" | "inet" | "cidr" | "macaddr"
            | "xml" => Scalar::Same,
            _ => Scalar::Untyped,
        };
        Kind { scalar, array }
    }
}

/// Writes one non-null value of `kind`.
fn write_value(
    kind: Kind,
    value: &Json<'_>,
    options: &RenderOptions,
    out: &mut String,
) -> Option<()> {
    if kind.scalar == Scalar::Json {
        return write_plain_json(value, out);
    }
    match value {
        Json::Array(items) if kind.array => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    Json::Null => out.push_str("null"),
                    Json::Array(_) => write_value(kind, item, options, out)?,
                    _ => write_scalar(kind.scalar, item, options, out)?,
                }
            }
            out.push(']');
            Some(())
        }
        _ if kind.array => None,
        _ => write_scalar(kind.scalar, value, options, out),
    }
}

fn write_scalar(
    scalar: Scalar,
    value: &Json<'_>,
    options: &RenderOptions,
    out: &mut String,
) -> Option<()> {
    match (scalar, value) {
        (_, Json::Array(_) | Json::Object(_)) => return None,
        (_, Json::Bool(b)) => out.push_str(b),
        (Scalar::Int | Scalar::Untyped | Scalar::Same, Json::Number(n)) if !is_fraction(n) => {
            out.push_str(&pyfmt::int(n))
        }
        (Scalar::Same | Scalar::Numeric, Json::Number(n)) => out.push_str(&pyfmt::numeric(n)?),
        (Scalar::Untyped | Scalar::Float, Json::Number(n)) => out.push_str(&pyfmt::float(n)?),
        (Scalar::Float, Json::String(s)) => out.push_str(match *s {
            "\"NaN\"" => "NaN",
            "\"Infinity\"" => "Infinity",
            "\"-Infinity\"" => "-Infinity",
            _ => return None,
        }),
        // Decimal('NaN') stays a Decimal with python types (written as the string), else
        // becomes a float (written bare).
        (Scalar::Numeric, Json::String(s)) => match (*s, options.python_types) {
            ("\"NaN\"" | "\"Infinity\"" | "\"-Infinity\"", true) => out.push_str(s),
            ("\"NaN\"" | "\"Infinity\"" | "\"-Infinity\"", false) => {
                out.push_str(&s[1..s.len() - 1])
            }
            _ => return None,
        },
        (Scalar::Bytea, Json::String(s)) => {
            let text = json::decode_string(s)?;
            json::encode_string(&pyfmt::bytea(&text)?, out);
        }
        (
            Scalar::Date | Scalar::Time | Scalar::Timestamp | Scalar::Timestamptz,
            Json::String(s),
        ) => {
            let text = json::decode_string(s)?;
            let as_string = options.datetime_as_string || !options.python_types;
            let written = match scalar {
                Scalar::Date => pyfmt::date(&text)?,
                Scalar::Time => pyfmt::time(&text)?,
                Scalar::Timestamp => pyfmt::timestamp(&text)?,
                _ if options.utc && as_string && text.ends_with("+00:00") => text,
                _ => pyfmt::timestamptz(&text, options.offset_seconds)?,
            };
            json::encode_string(&written, out);
        }
        (Scalar::Same | Scalar::Untyped, Json::String(s)) => write_string(s, out)?,
        _ => return None,
    }
    Some(())
}

/// A string from PostgreSQL's `to_json`, which escapes exactly what Python escapes and the
/// same way: copied, after a check that costs nothing without a backslash.
fn write_string(raw: &str, out: &mut String) -> Option<()> {
    if raw.contains('\\') && !json::is_python_encoded(raw) {
        json::encode_string(&json::decode_string(raw)?, out);
    } else {
        out.push_str(raw);
    }
    Some(())
}

fn is_fraction(number: &str) -> bool {
    number.contains(['.', 'e', 'E'])
}

/// A json/jsonb value as `_plain_json(json.loads(...))` then `json.dumps` write it: compact,
/// strings re-encoded, numbers with a fraction as floats, a repeated key once (at its first
/// place, with its last value).
fn write_plain_json(value: &Json<'_>, out: &mut String) -> Option<()> {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(b),
        Json::Number(n) if is_fraction(n) => out.push_str(&pyfmt::float(n)?),
        Json::Number(n) => out.push_str(&pyfmt::int(n)),
        Json::String(s) => json::encode_string(&json::decode_string(s)?, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_plain_json(item, out)?;
            }
            out.push(']');
        }
        Json::Object(members) => {
            let mut merged: Vec<(String, &Json<'_>)> = Vec::with_capacity(members.len());
            for (key, item) in members {
                let key = json::decode_string(key)?;
                match merged.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = item,
                    None => merged.push((key, item)),
                }
            }
            out.push('{');
            for (i, (key, item)) in merged.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::encode_string(key, out);
                out.push(':');
                write_plain_json(item, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

#[cfg(test)]
mod tests;
