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
    if let Some(columns) = request.get("pk_columns").filter(|v| !v.is_null()) {
        return columns
            .as_object()
            .filter(|c| !c.is_empty())
            .cloned()
            .ok_or_else(|| DbError::Invalid("pk as a dict needs at least one column".into()));
    }
    let value = request
        .get("pk")
        .filter(|v| !v.is_null())
        .ok_or_else(|| DbError::Invalid("a pk value is required".into()))?;
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
