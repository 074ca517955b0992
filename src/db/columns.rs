//! A fetch's result column by column, for `fetch(..., df=True)`: the guest builds one numpy
//! array per column from one JSON list (`guest-sdk/pq/_frame.py`), instead of a dict per row
//! it would then take apart again.
//!
//! In: `{"columns": [{"name", "type"}], "rows": [{...}, ...]}` (`results::rows`; each row
//! PostgreSQL's `to_json`, whose keys are the columns in order). Out: `{"columns": [...],
//! "data": [[first column's values], ...]}`, values as PostgreSQL wrote them except numerics,
//! which become JSON text so that no digit is lost to a float on the way.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::DbError;

/// How a fetch's rows travel to the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// A list of objects, one per row (the default).
    #[default]
    Rows,
    /// A list per column ([`transpose`]).
    Columns,
}

#[derive(Deserialize)]
struct Column<'a> {
    #[serde(borrow)]
    name: &'a RawValue,
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Deserialize)]
struct RowResult<'a> {
    #[serde(borrow)]
    columns: Vec<Column<'a>>,
    #[serde(borrow)]
    rows: Vec<RowValues<'a>>,
}

/// A row's values in column order; the keys are not needed (and may repeat).
struct RowValues<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RowValues<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> Visitor<'de> for Values {
            type Value = RowValues<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut values = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((IgnoredAny, value)) = map.next_entry::<IgnoredAny, &RawValue>()? {
                    values.push(value);
                }
                Ok(RowValues(values))
            }
        }
        deserializer.deserialize_map(Values)
    }
}

/// `result` (rows) as columns; see the module's documentation.
pub fn transpose(result: &[u8]) -> Result<Vec<u8>, DbError> {
    let parsed: RowResult = serde_json::from_slice(result)
        .map_err(|e| DbError::Invalid(format!("a result the host cannot read by column: {e}")))?;
    let width = parsed.columns.len();
    let mut out = Vec::with_capacity(result.len());
    out.extend_from_slice(b"{\"columns\":[");
    for (i, column) in parsed.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        out.extend_from_slice(column.name.get().as_bytes());
        out.extend_from_slice(b",\"type\":");
        out.extend_from_slice(
            serde_json::to_string(&column.type_name)
                .unwrap_or_default()
                .as_bytes(),
        );
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"data\":[");
    for (c, column) in parsed.columns.iter().enumerate() {
        if c > 0 {
            out.push(b',');
        }
        out.push(b'[');
        let quote = column.type_name == "numeric";
        for (r, row) in parsed.rows.iter().enumerate() {
            let Some(value) = row.0.get(c).filter(|_| row.0.len() == width) else {
                return Err(DbError::Invalid(format!(
                    "row {r} has {} values for {width} columns",
                    row.0.len()
                )));
            };
            if r > 0 {
                out.push(b',');
            }
            let text = value.get();
            // A numeric is a JSON number (or "NaN" text already): as text it keeps its digits.
            let number = quote && text.starts_with(|ch: char| ch == '-' || ch.is_ascii_digit());
            if number {
                out.push(b'"');
            }
            out.extend_from_slice(text.as_bytes());
            if number {
                out.push(b'"');
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(input: &str) -> serde_json::Value {
        serde_json::from_slice(&transpose(input.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn rows_become_columns_in_order() {
        let out = columns(
            r#"{"columns":[{"name":"id","type":"int4"},{"name":"n","type":"numeric"},
                {"name":"id","type":"text"}],
               "rows":[{"id":1,"n":1.50,"id":"a"},{"id":2,"n":null,"id":null}]}"#,
        );
        assert_eq!(
            out,
            serde_json::json!({
                "columns": [{"name":"id","type":"int4"},{"name":"n","type":"numeric"},
                            {"name":"id","type":"text"}],
                "data": [[1, 2], ["1.50", null], ["a", null]]
            })
        );
    }

    #[test]
    fn numerics_keep_every_digit() {
        let out = columns(
            r#"{"columns":[{"name":"n","type":"numeric"}],
               "rows":[{"n":12345678901234567890.000000000001},{"n":-0.1},{"n":"NaN"}]}"#,
        );
        assert_eq!(
            out["data"][0],
            serde_json::json!(["12345678901234567890.000000000001", "-0.1", "NaN"])
        );
    }

    #[test]
    fn an_empty_result_has_empty_columns() {
        let out = columns(r#"{"columns":[{"name":"a","type":"int8"}],"rows":[]}"#);
        assert_eq!(out["data"], serde_json::json!([[]]));
    }

    #[test]
    fn a_ragged_or_broken_result_is_refused() {
        for bad in [
            r#"{"columns":[{"name":"a","type":"int8"},{"name":"b","type":"int8"}],"rows":[{"a":1}]}"#,
            r#"{"columns":[],"rows":[[1]]}"#,
            r#"{"columns":[{"name":"a","type":"int8"}],"rows":[{"a":1}"#,
        ] {
            assert!(transpose(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
