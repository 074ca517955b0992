//! One tenant's databases as a host capability: `connect` and `fetch` (guest-sdk/ABI.md, op 16).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::capability::{DatabaseCapability, DbError, DbFuture};
use super::convert::{Param, identifier, placeholders};
use super::pool::{DbTarget, TenantPools};

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

/// The capability handed to one tenant's calls.
pub struct TenantDatabaseAccess {
    /// Its databases by the tenant's names; nothing else can be named.
    pub targets: Arc<HashMap<String, DbTarget>>,
    /// The process's pools.
    pub pools: Arc<TenantPools>,
    /// Result caps.
    pub caps: ResultCaps,
}

impl DatabaseCapability for TenantDatabaseAccess {
    fn call<'a>(&'a self, request: &'a Map<String, Value>, deadline: Instant) -> DbFuture<'a> {
        Box::pin(async move {
            match request.get("op").and_then(Value::as_str) {
                Some("connect") => {
                    self.target(request.get("connection"))?;
                    Ok(b"{}".to_vec())
                }
                Some("fetch") => self.fetch(request, deadline).await,
                other => Err(DbError::Invalid(format!(
                    "unknown database operation {other:?}"
                ))),
            }
        })
    }
}

impl TenantDatabaseAccess {
    fn target(&self, name: Option<&Value>) -> Result<&DbTarget, DbError> {
        let name = name
            .and_then(Value::as_str)
            .ok_or_else(|| DbError::Invalid("a database name is required".into()))?;
        self.targets
            .get(name)
            .ok_or_else(|| DbError::NotFound(format!("unknown database {name:?}")))
    }

    async fn fetch(
        &self,
        request: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        let target = self.target(
            request
                .get("db")
                .filter(|v| !v.is_null())
                .or(request.get("connection")),
        )?;
        let options = request
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let (sql, params) = build_select(request, &options)?;
        let client = self.pools.get(target, deadline).await?;
        let inner = client.prepare(&sql).await.map_err(sql_error)?;
        if inner.params().len() != params.len() {
            return Err(DbError::Invalid(format!(
                "the query has {} placeholders but {} params were given",
                inner.params().len(),
                params.len()
            )));
        }
        let columns: Vec<Value> = inner
            .columns()
            .iter()
            .map(|c| serde_json::json!({"name": c.name(), "type": c.type_().name()}))
            .collect();
        let wrapped = format!("SELECT to_json(q)::text FROM ({sql}) q");
        let timeout_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(1);
        let params: Vec<Param> = params.into_iter().map(Param).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        // A read-only transaction whose statements cannot outlive the request's deadline.
        client
            .batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}"
            ))
            .await
            .map_err(sql_error)?;
        let outcome = async {
            let statement = client.prepare(&wrapped).await.map_err(sql_error)?;
            let rows = client.query(&statement, &refs).await.map_err(sql_error)?;
            let mut out =
                format!("{{\"columns\":{},\"rows\":[", Value::Array(columns)).into_bytes();
            for (i, row) in rows.iter().enumerate() {
                if i >= self.caps.max_rows {
                    return Err(DbError::TooLarge(format!(
                        "more than {} rows; add a limit",
                        self.caps.max_rows
                    )));
                }
                let json: &str = row.get(0);
                if out.len() + json.len() > self.caps.max_bytes {
                    return Err(DbError::TooLarge(format!(
                        "result over {} bytes; add a limit",
                        self.caps.max_bytes
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
        .await;
        let _ = client
            .batch_execute(if outcome.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            })
            .await;
        outcome
    }
}

/// The SELECT for a fetch, and its parameters.
fn build_select(
    request: &Map<String, Value>,
    options: &Map<String, Value>,
) -> Result<(String, Vec<Value>), DbError> {
    if let Some(query) = options.get("query").and_then(Value::as_str) {
        let (sql, count) = placeholders(query)?;
        let params = match options.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(params)) => params.clone(),
            Some(_) => return Err(DbError::Invalid("params must be a list".into())),
        };
        if count != params.len() {
            return Err(DbError::Invalid(format!(
                "the query has {count} placeholders but {} params were given",
                params.len()
            )));
        }
        return Ok((sql, params));
    }
    let schema = request
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or("public");
    let table = request
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| DbError::Invalid("fetch needs a table, or query=...".into()))?;
    let mut sql = format!(
        "SELECT * FROM {}.{}",
        identifier(schema)?,
        identifier(table)?
    );
    let mut params = Vec::new();
    if let Some(filter) = options.get("where").filter(|v| !v.is_null()) {
        let filter = filter
            .as_object()
            .ok_or_else(|| DbError::Invalid("where must be a dict".into()))?;
        let mut clauses = Vec::new();
        for (column, value) in filter {
            if value.is_null() {
                clauses.push(format!("{} IS NULL", identifier(column)?));
            } else {
                params.push(value.clone());
                clauses.push(format!("{} = ${}", identifier(column)?, params.len()));
            }
        }
        if !clauses.is_empty() {
            sql.push_str(&format!(" WHERE {}", clauses.join(" AND ")));
        }
    }
    if let Some(order) = options.get("order_by").filter(|v| !v.is_null()) {
        let items = match order {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect(),
            _ => {
                return Err(DbError::Invalid(
                    "order_by must be a column or a list of columns".into(),
                ));
            }
        };
        let mut terms = Vec::new();
        for item in items {
            let mut words = item.split_whitespace();
            let column = identifier(words.next().unwrap_or(""))?;
            let direction = match words.next().map(str::to_ascii_uppercase).as_deref() {
                None => "",
                Some("ASC") => " ASC",
                Some("DESC") => " DESC",
                Some(other) => {
                    return Err(DbError::Invalid(format!(
                        "unknown sort direction {other:?}"
                    )));
                }
            };
            if words.next().is_some() {
                return Err(DbError::Invalid(format!("invalid order_by {item:?}")));
            }
            terms.push(format!("{column}{direction}"));
        }
        sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
    }
    for (key, keyword) in [("limit", "LIMIT"), ("offset", "OFFSET")] {
        if let Some(value) = options.get(key).filter(|v| !v.is_null()) {
            let n = value
                .as_u64()
                .ok_or_else(|| DbError::Invalid(format!("{key} must be a non-negative integer")))?;
            sql.push_str(&format!(" {keyword} {n}"));
        }
    }
    Ok((sql, params))
}

/// PostgreSQL's own error, without the host's internals; a lost connection is unavailability.
fn sql_error(error: tokio_postgres::Error) -> DbError {
    match error.as_db_error() {
        Some(db) => DbError::Sql {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
        },
        None => DbError::Unavailable(error.to_string()),
    }
}
