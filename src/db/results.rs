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
        return Err(param_count_mismatch(&statement, sql));
    }
    if !needs_casts(&statement) {
        return Ok((text, statement));
    }
    let casts: Vec<Option<String>> = statement
        .params()
        .iter()
        .map(|ty| (!encoded_natively(ty)).then(|| text_cast(ty)))
        .collect();
    let text = sql.render(&casts);
    let statement = client.prepare(&text).await.map_err(sql_error)?;
    Ok((text, statement))
}

/// Whether a parameter of `statement` has a type the host does not encode itself.
fn needs_casts(statement: &Statement) -> bool {
    !statement.params().iter().all(encoded_natively)
}

fn param_count_mismatch(statement: &Statement, sql: &Sql) -> DbError {
    DbError::Invalid(format!(
        "the statement has {} parameters but {} values were given",
        statement.params().len(),
        sql.params.len()
    ))
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
    let statement = client
        .prepare_typed(&wrap(&text, dml), inner.params())
        .await
        .map_err(sql_error)?;
    let found = client
        .query(&statement, &refs(&bound(sql)))
        .await
        .map_err(sql_error)?;
    shape(&inner, &found, caps)
}

/// A `fetch` in a read-only transaction of its own on a connection just taken from the pool,
/// in two round trips instead of six: the session's reset and the transaction's start
/// (`begin`) travel with both statements' preparation, and the query with the COMMIT.
/// Nothing runs before the reset and `begin` have succeeded, and committing a read-only
/// transaction early has no effect. On an error the transaction may still be open: the
/// caller rolls back.
pub async fn rows_read_only(
    client: &tokio_postgres::Client,
    begin: &str,
    sql: &Sql,
    caps: &ResultCaps,
) -> Result<Vec<u8>, DbError> {
    let text = sql.render(&[]);
    let wrapped = wrap(&text, false);
    let (reset, begun, inner, outer) = tokio::join!(
        client.batch_execute(super::pool::RESET_SESSION),
        client.batch_execute(begin),
        client.prepare(&text),
        client.prepare(&wrapped)
    );
    reset.map_err(sql_error)?;
    begun.map_err(sql_error)?;
    let inner = inner.map_err(sql_error)?;
    let outer = match outer {
        // The common case: no parameter needs a cast from text, and PostgreSQL inferred the
        // same parameter types for the wrapped statement as for the statement itself.
        Ok(outer) if outer.params() == inner.params() && !needs_casts(&inner) => outer,
        _ => {
            let (text, inner) = prepare(client, sql).await?;
            let outer = client
                .prepare_typed(&wrap(&text, false), inner.params())
                .await
                .map_err(sql_error)?;
            return query_and_commit(client, sql, &inner, &outer, caps).await;
        }
    };
    if inner.params().len() != sql.params.len() {
        return Err(param_count_mismatch(&inner, sql));
    }
    query_and_commit(client, sql, &inner, &outer, caps).await
}

async fn query_and_commit(
    client: &tokio_postgres::Client,
    sql: &Sql,
    inner: &Statement,
    outer: &Statement,
    caps: &ResultCaps,
) -> Result<Vec<u8>, DbError> {
    let params = bound(sql);
    let params = refs(&params);
    let (found, committed) =
        tokio::join!(client.query(outer, &params), client.batch_execute("COMMIT"));
    let found = found.map_err(sql_error)?;
    committed.map_err(sql_error)?;
    shape(inner, &found, caps)
}

/// `text` as one JSON text per row.
fn wrap(text: &str, dml: bool) -> String {
    if dml {
        format!("WITH q AS ({text}) SELECT to_json(q)::text FROM q")
    } else {
        format!("SELECT to_json(q)::text FROM ({text}) q")
    }
}

/// The ABI's result: `inner`'s columns with their types, and the rows' JSON, within `caps`.
fn shape(
    inner: &Statement,
    found: &[tokio_postgres::Row],
    caps: &ResultCaps,
) -> Result<Vec<u8>, DbError> {
    let columns: Vec<Value> = inner
        .columns()
        .iter()
        .map(|c| serde_json::json!({"name": c.name(), "type": c.type_().name()}))
        .collect();
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
