//! Which rows a write means: the primary-key values it names.

use serde_json::{Map, Value};

use super::super::DbError;
use super::super::run::sql_error;
use super::super::statements;

/// The primary-key values a write names: `pk_columns` (column → value), or `pk`, a value of
/// the table's one-column primary key.
pub(super) async fn keys(
    client: &tokio_postgres::Client,
    request: &Map<String, Value>,
    table: &str,
) -> Result<Map<String, Value>, DbError> {
    let value = match named_keys(request)? {
        NamedKeys::Columns(columns) => return Ok(columns),
        NamedKeys::Value(value) => value,
    };
    let columns: Vec<String> = client
        .query(statements::PRIMARY_KEY_COLUMNS, &[&table])
        .await
        .map_err(sql_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    match columns.as_slice() {
        [column] => Ok(Map::from_iter([(column.clone(), value.clone())])),
        [] => Err(DbError::Invalid(format!(
            "{table} does not exist or has no primary key: pass pk as a dict of column → value"
        ))),
        _ => Err(DbError::Invalid(format!(
            "{table} has a primary key of {} columns ({}): pass pk as a dict of column → value",
            columns.len(),
            columns.join(", ")
        ))),
    }
}

/// What a write's request names, before any catalogue lookup.
#[doc(hidden)]
pub enum NamedKeys<'a> {
    /// `pk_columns`: column → value.
    Columns(Map<String, Value>),
    /// `pk`: a value of the table's one-column primary key, still to be looked up.
    Value(&'a Value),
}

/// Reads `pk_columns` or `pk` from a write's request (public for the fuzz targets in fuzz/).
#[doc(hidden)]
pub fn named_keys(request: &Map<String, Value>) -> Result<NamedKeys<'_>, DbError> {
    if let Some(columns) = request.get("pk_columns").filter(|v| !v.is_null()) {
        return columns
            .as_object()
            .filter(|c| !c.is_empty())
            .cloned()
            .map(NamedKeys::Columns)
            .ok_or_else(|| DbError::Invalid("pk as a dict needs at least one column".into()));
    }
    request
        .get("pk")
        .filter(|v| !v.is_null())
        .map(NamedKeys::Value)
        .ok_or_else(|| DbError::Invalid("a pk value is required".into()))
}
