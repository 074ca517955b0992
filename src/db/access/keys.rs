//! Which rows a write means: the primary-key columns and values it names.

use serde_json::{Map, Value};

use super::super::DbError;
use super::super::request::{NamedKeys, Write};
use super::super::results::sql_error;
use super::super::statements;

/// The primary-key columns and values a write names: `pk_columns` as given, or `pk`, a value
/// of the table's one-column primary key, whose column the catalogue names.
pub(super) async fn keys(
    client: &tokio_postgres::Client,
    write: &Write,
) -> Result<Map<String, Value>, DbError> {
    let value = match write.keys()? {
        NamedKeys::Columns(columns) => return Ok(columns.clone()),
        NamedKeys::Value(value) => value,
    };
    let table = statements::qualified_table(write.schema.as_deref(), &write.table)?;
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
