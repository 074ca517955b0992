//! Running one bound statement and shaping its result as the ABI's JSON.

use serde_json::Value;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::DbError;
use super::convert::{Param, encoded_natively, text_cast};
use super::sql::Sql;

/// Caps on what one call may return.
#[derive(Debug, Clone, Copy)]
pub struct ResultCaps {
    /// Rows at most.
    pub max_rows: usize,
    /// Bytes of JSON at most.
    pub max_bytes: usize,
}

impl Default for ResultCaps {
    fn default() -> Self {
        ResultCaps {
            max_rows: 10_000,
            max_bytes: 8 << 20,
        }
    }
}

/// Prepares `sql`; parameters of a type the host does not encode are re-cast from text.
/// Returns the final text with its statement.
async fn prepare(
    client: &tokio_postgres::Client,
    sql: &Sql,
) -> Result<(String, Statement), DbError> {
    let text = sql.render(&[]);
    let statement = client.prepare(&text).await.map_err(sql_error)?;
    if statement.params().len() != sql.params.len() {
        return Err(DbError::Invalid(format!(
            "the statement has {} parameters but {} values were given",
            statement.params().len(),
            sql.params.len()
        )));
    }
    let casts: Vec<Option<String>> = statement
        .params()
        .iter()
        .map(|ty| (!encoded_natively(ty)).then(|| text_cast(ty)))
        .collect();
    if casts.iter().all(Option::is_none) {
        return Ok((text, statement));
    }
    let text = sql.render(&casts);
    let statement = client.prepare(&text).await.map_err(sql_error)?;
    Ok((text, statement))
}

fn bound(sql: &Sql) -> Vec<Param> {
    sql.params.iter().cloned().map(Param).collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Runs a row-returning statement (`dml`: an INSERT/UPDATE ... RETURNING) and returns
/// `{"columns": [{"name", "type"}], "rows": [...]}`, each row PostgreSQL's `to_json` of it.
pub async fn rows(
    client: &tokio_postgres::Client,
    sql: &Sql,
    dml: bool,
    caps: &ResultCaps,
) -> Result<Vec<u8>, DbError> {
    let (text, inner) = prepare(client, sql).await?;
    let columns: Vec<Value> = inner
        .columns()
        .iter()
        .map(|c| serde_json::json!({"name": c.name(), "type": c.type_().name()}))
        .collect();
    let wrapped = if dml {
        format!("WITH q AS ({text}) SELECT to_json(q)::text FROM q")
    } else {
        format!("SELECT to_json(q)::text FROM ({text}) q")
    };
    let statement = client
        .prepare_typed(&wrapped, inner.params())
        .await
        .map_err(sql_error)?;
    let params = bound(sql);
    let found = client
        .query(&statement, &refs(&params))
        .await
        .map_err(sql_error)?;
    let mut out = format!("{{\"columns\":{},\"rows\":[", Value::Array(columns)).into_bytes();
    for (i, row) in found.iter().enumerate() {
        if i >= caps.max_rows {
            return Err(DbError::TooLarge(format!(
                "more than {} rows; add a limit",
                caps.max_rows
            )));
        }
        let json: &str = row.get(0);
        if out.len() + json.len() > caps.max_bytes {
            return Err(DbError::TooLarge(format!(
                "result over {} bytes; add a limit",
                caps.max_bytes
            )));
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json.as_bytes());
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Runs a statement for its row count: `{"rowcount": n}`.
pub async fn count(client: &tokio_postgres::Client, sql: &Sql) -> Result<Vec<u8>, DbError> {
    let (_, statement) = prepare(client, sql).await?;
    let params = bound(sql);
    let n = client
        .execute(&statement, &refs(&params))
        .await
        .map_err(sql_error)?;
    Ok(format!("{{\"rowcount\":{n}}}").into_bytes())
}

/// Whether SQLSTATE `code` says the server is going away, gone, or not yet back (connection
/// exceptions, admin or crash shutdown, starting up), rather than blaming the statement.
pub fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// PostgreSQL's own error, without the host's internals; a lost connection or a server shutting
/// down is unavailability, and a value that cannot be encoded is the guest's invalid argument.
pub fn sql_error(error: tokio_postgres::Error) -> DbError {
    use std::error::Error as _;
    if let Some(db) = error.as_db_error() {
        // The server going away (shutting down, crashed, starting up) or the connection
        // failing is unavailability, not the statement's fault.
        let code = db.code().code();
        if server_unavailable(code) {
            return DbError::Unavailable(format!("{}: {}", code, db.message()));
        }
        return DbError::Sql {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
        };
    }
    let io = error
        .source()
        .is_some_and(|source| source.is::<std::io::Error>());
    if error.is_closed() || io {
        return DbError::Unavailable(error.to_string());
    }
    match error.source() {
        Some(source) => DbError::Invalid(format!("{error}: {source}")),
        None => DbError::Invalid(error.to_string()),
    }
}
