//! A tenant admin's direct access to the tenant's own databases: running SQL and loading a CSV
//! into a table. Both run as the tenant's own role, on its own databases only, exactly as its
//! handlers' calls do: what the role may not do there, this may not do either.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use serde::Serialize;

use super::{App, AppError, Caller};
use crate::control::ControlError;
use crate::db::pool::RESET_SESSION;
use crate::db::{DbError, DbTarget};

/// How long one admin SQL script or CSV load may run, at most.
const ADMIN_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);
/// Rows of one statement shown back, at most (the rest are counted).
const MAX_ROWS_SHOWN: usize = 1_000;

/// What one statement of a script did.
#[derive(Debug, Default, Serialize)]
pub struct StatementResult {
    /// Rows it returned or changed.
    pub rows_affected: u64,
    /// Its result's columns (none for a statement that returns no rows).
    pub columns: Vec<String>,
    /// Its rows as text (`null` for NULL), at most 1,000.
    pub rows: Vec<Vec<Option<String>>>,
}

/// What a CSV load did.
#[derive(Debug, Serialize)]
pub struct LoadResult {
    /// The table.
    pub table: String,
    /// The columns the header row named, in order.
    pub columns: Vec<String>,
    /// Rows loaded.
    pub rows: u64,
}

impl App {
    /// The tenant's database `name`, for its admin.
    async fn own_database(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<DbTarget, AppError> {
        caller.may_manage(tenant)?;
        let view = self
            .registry
            .tenant(tenant)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no tenant {tenant:?}")))?;
        view.databases.get(name).cloned().ok_or_else(|| {
            ControlError::NotFound(format!("tenant {tenant:?} has no database {name:?}")).into()
        })
    }

    /// A connection to `target` as the tenant's role, its session reset and its statements
    /// limited in time.
    async fn admin_connection(
        &self,
        target: &DbTarget,
    ) -> Result<deadpool_postgres::Object, AppError> {
        let deadline = Instant::now() + ADMIN_STATEMENT_TIMEOUT;
        let client = self.pools.get(target, deadline).await.map_err(database)?;
        client
            .batch_execute(&format!(
                "{RESET_SESSION}; SET statement_timeout = {}",
                ADMIN_STATEMENT_TIMEOUT.as_millis()
            ))
            .await
            .map_err(sql)?;
        Ok(client)
    }

    /// Runs `script` (one or more statements) in the tenant's database `name`, as its role.
    pub async fn run_sql(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        script: &str,
    ) -> Result<Vec<StatementResult>, AppError> {
        let target = self.own_database(caller, tenant, name).await?;
        let client = self.admin_connection(&target).await?;
        let messages = client.simple_query(script).await.map_err(sql)?;
        let mut results = Vec::new();
        let mut current = StatementResult::default();
        for message in messages {
            match message {
                tokio_postgres::SimpleQueryMessage::RowDescription(columns) => {
                    current.columns = columns.iter().map(|c| c.name().to_string()).collect();
                }
                tokio_postgres::SimpleQueryMessage::Row(row)
                    if current.rows.len() < MAX_ROWS_SHOWN =>
                {
                    let values = (0..row.len()).map(|i| row.get(i).map(str::to_string));
                    current.rows.push(values.collect());
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(count) => {
                    current.rows_affected = count;
                    results.push(std::mem::take(&mut current));
                }
                _ => {}
            }
        }
        Ok(results)
    }

    /// Loads a CSV into `table` (`schema.table`) of the tenant's database `name`, streamed
    /// into PostgreSQL's COPY: the header row names the columns. A value of the wrong type
    /// fails the whole load, naming its CSV line and column.
    pub async fn load_csv<S, E>(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        table: &str,
        body: S,
    ) -> Result<LoadResult, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<crate::BoxError>,
    {
        let (schema, bare) = table.split_once('.').unwrap_or(("public", table));
        let quoted = format!(
            "{}.{}",
            crate::db::sql::identifier(schema).map_err(database)?,
            crate::db::sql::identifier(bare).map_err(database)?
        );
        let target = self.own_database(caller, tenant, name).await?;
        let mut body = body;
        let (header, first) = header_line(&mut body).await?;
        let columns = parse_header(&header)?;
        let column_list = columns
            .iter()
            .map(|c| crate::db::sql::identifier(c).map_err(database))
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        let client = self.admin_connection(&target).await?;
        let copy =
            format!("COPY {quoted} ({column_list}) FROM STDIN WITH (FORMAT csv, HEADER true)");
        let sink = client
            .copy_in::<_, Bytes>(copy.as_str())
            .await
            .map_err(sql)?;
        futures_util::pin_mut!(sink);
        sink.send(first).await.map_err(sql)?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| AppError::host("reading the CSV", e))?;
            sink.send(chunk).await.map_err(sql)?;
        }
        let rows = sink.finish().await.map_err(sql)?;
        Ok(LoadResult {
            table: format!("{schema}.{bare}"),
            columns,
            rows,
        })
    }
}

/// The CSV's first line (its header), and every byte read so far, header included.
async fn header_line<S, E>(body: &mut S) -> Result<(String, Bytes), AppError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<crate::BoxError>,
{
    let mut read = Vec::new();
    loop {
        if let Some(end) = read.iter().position(|&b| b == b'\n') {
            let header = String::from_utf8(read[..end].to_vec())
                .map_err(|_| AppError::Invalid("the CSV's header row is not UTF-8".into()))?;
            return Ok((header.trim_end_matches('\r').to_string(), Bytes::from(read)));
        }
        match body.next().await {
            Some(chunk) => {
                read.extend_from_slice(&chunk.map_err(|e| AppError::host("reading the CSV", e))?)
            }
            None if read.is_empty() => {
                return Err(AppError::Invalid(
                    "the CSV is empty: it needs a header row".into(),
                ));
            }
            None => {
                let header = String::from_utf8(read.clone())
                    .map_err(|_| AppError::Invalid("the CSV's header row is not UTF-8".into()))?;
                return Ok((header.trim_end_matches('\r').to_string(), Bytes::from(read)));
            }
        }
    }
}

/// The column names of a CSV header row (fields may be quoted, `""` is a quote).
fn parse_header(line: &str) -> Result<Vec<String>, AppError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '"') if field.is_empty() => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (_, c) => field.push(c),
        }
    }
    fields.push(field);
    let fields: Vec<String> = fields.into_iter().map(|f| f.trim().to_string()).collect();
    if fields.iter().any(String::is_empty) {
        return Err(AppError::Invalid(
            "the CSV's header row names an empty column".into(),
        ));
    }
    Ok(fields)
}

/// A failure of the tenant's database; SQL errors are the caller's, with where they arose
/// (a COPY names its CSV line and column).
fn sql(error: tokio_postgres::Error) -> AppError {
    match error.as_db_error() {
        Some(db) => {
            let mut message = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            if let Some(context) = db.where_() {
                message.push_str(&format!(" [{context}]"));
            }
            AppError::Invalid(message)
        }
        None => AppError::host("the tenant's database", error),
    }
}

fn database(error: DbError) -> AppError {
    match error {
        DbError::Unavailable(_) => AppError::host("the tenant's database", error.to_string()),
        other => AppError::Invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_split_like_csv() {
        assert_eq!(
            parse_header(r#"id,"full ""name""", revenue"#).unwrap(),
            ["id", "full \"name\"", "revenue"]
        );
        assert!(parse_header("id,,x").is_err());
    }
}
