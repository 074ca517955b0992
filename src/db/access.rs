//! One tenant's databases as a host capability (guest-sdk/ABI.md, op 16): each call checks
//! the database name against the tenant's own, runs in a transaction whose statements cannot
//! outlive the request, and returns JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use super::capability::{DatabaseCapability, DbError, DbFuture};
use super::pool::{DbTarget, TenantPools};
use super::run::{ResultCaps, count, rows, sql_error};
use super::statements::{self, qualified_table};

/// The transaction a handler opened with `dbconn.transaction(db)`.
struct OpenTransaction {
    /// The tenant's name for its database.
    name: String,
    client: deadpool_postgres::Object,
    /// A statement in it failed: PostgreSQL has aborted it, so it can only roll back.
    failed: bool,
}

/// The capability handed to one request's calls. Made per request, so an open transaction
/// belongs to exactly one request.
pub struct TenantDatabaseAccess {
    /// Its databases by the tenant's names; nothing else can be named.
    targets: Arc<HashMap<String, DbTarget>>,
    pools: Arc<TenantPools>,
    caps: ResultCaps,
    transaction: Mutex<Option<OpenTransaction>>,
}

/// A connection for one call: the open transaction's, or one of the pool's.
enum Connection<'a> {
    Transaction(MutexGuard<'a, Option<OpenTransaction>>),
    Pooled(Box<deadpool_postgres::Object>),
}

impl Connection<'_> {
    fn client(&self) -> &tokio_postgres::Client {
        match self {
            Connection::Transaction(guard) => &guard.as_ref().expect("checked when made").client,
            Connection::Pooled(client) => client,
        }
    }
}

impl DatabaseCapability for TenantDatabaseAccess {
    fn call<'a>(&'a self, request: &'a Map<String, Value>, deadline: Instant) -> DbFuture<'a> {
        Box::pin(async move {
            let op = request.get("op").and_then(Value::as_str).unwrap_or("");
            match op {
                "connect" => {
                    self.target(request.get("connection"))?;
                    Ok(b"{}".to_vec())
                }
                "begin" => self.begin(request, deadline).await,
                "commit" | "rollback" => self.end(request, op == "commit").await,
                "fetch" | "insert" | "update" | "upsert" | "delete" | "execute" => {
                    self.statement(op, request, deadline).await
                }
                other => Err(DbError::Invalid(format!(
                    "unknown database operation {other:?}"
                ))),
            }
        })
    }
}

impl TenantDatabaseAccess {
    /// Access to `targets` through `pools`, with results capped by `caps`.
    pub fn new(
        targets: Arc<HashMap<String, DbTarget>>,
        pools: Arc<TenantPools>,
        caps: ResultCaps,
    ) -> Self {
        TenantDatabaseAccess {
            targets,
            pools,
            caps,
            transaction: Mutex::new(None),
        }
    }

    /// Ends the request: a transaction the handler left open is rolled back.
    pub async fn finish(&self) {
        let Some(open) = self.transaction.lock().await.take() else {
            return;
        };
        let rollback = open.client.batch_execute("ROLLBACK");
        if !matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), rollback).await,
            Ok(Ok(()))
        ) {
            // Never hand a connection of unknown state back to the pool.
            drop(deadpool_postgres::Object::take(open.client));
        }
    }

    fn target(&self, name: Option<&Value>) -> Result<&DbTarget, DbError> {
        let name = name
            .and_then(Value::as_str)
            .ok_or_else(|| DbError::Invalid("a database name is required".into()))?;
        self.targets
            .get(name)
            .ok_or_else(|| DbError::NotFound(format!("unknown database {name:?}")))
    }

    /// The database a call names: `db`, else the connection's.
    fn named_target(&self, request: &Map<String, Value>) -> Result<&DbTarget, DbError> {
        self.target(
            request
                .get("db")
                .filter(|v| !v.is_null())
                .or(request.get("connection")),
        )
    }

    async fn connection(
        &self,
        target: &DbTarget,
        deadline: Instant,
    ) -> Result<Connection<'_>, DbError> {
        let guard = self.transaction.lock().await;
        if guard.as_ref().is_some_and(|open| open.name == target.name) {
            return Ok(Connection::Transaction(guard));
        }
        drop(guard);
        Ok(Connection::Pooled(Box::new(
            self.pools.get(target, deadline).await?,
        )))
    }

    /// Runs one statement: in the open transaction on its database if there is one, else in
    /// a transaction of its own (read-only for `fetch`).
    async fn statement(
        &self,
        op: &str,
        request: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        let target = self.named_target(request)?;
        let mut connection = self.connection(target, deadline).await?;
        let in_transaction = matches!(connection, Connection::Transaction(_));
        let timeout_ms = remaining_ms(deadline);
        let start = if in_transaction {
            format!("SET LOCAL statement_timeout = {timeout_ms}")
        } else {
            let mode = if op == "fetch" { " READ ONLY" } else { "" };
            format!("BEGIN{mode}; SET LOCAL statement_timeout = {timeout_ms}")
        };
        let outcome = match connection.client().batch_execute(&start).await {
            Ok(()) => self.run(op, request, connection.client()).await,
            Err(e) => Err(sql_error(e)),
        };
        if let Connection::Transaction(guard) = &mut connection {
            if matches!(outcome, Err(DbError::Sql { .. })) {
                guard.as_mut().expect("checked when made").failed = true;
            }
            return outcome;
        }
        let end = connection.client().batch_execute(if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        });
        match (outcome, end.await) {
            // A write is acknowledged only once its COMMIT is.
            (Ok(_), Err(e)) => Err(sql_error(e)),
            (outcome, _) => outcome,
        }
    }

    async fn run(
        &self,
        op: &str,
        request: &Map<String, Value>,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<u8>, DbError> {
        let caps = &self.caps;
        match op {
            "fetch" => {
                let options = request
                    .get("options")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let sql = statements::select(request, &options)?;
                statements::refuse_session_control(&sql)?;
                rows(client, &sql, false, caps).await
            }
            "execute" => {
                let query = request
                    .get("query")
                    .and_then(Value::as_str)
                    .ok_or_else(|| DbError::Invalid("execute needs query=...".into()))?;
                let params = statements::params(request.get("params"))?;
                let sql = super::sql::with_placeholders(query, params)?;
                statements::refuse_session_control(&sql)?;
                count(client, &sql).await
            }
            _ => {
                let table = qualified_table(request)?;
                let sql = match op {
                    "insert" => {
                        let mut sql = statements::insert(&table, statements::record(request)?)?;
                        sql.push(" RETURNING *");
                        sql
                    }
                    "update" => {
                        let keys = keys(client, request, &table).await?;
                        statements::update(&table, &keys, statements::record(request)?)?
                    }
                    "upsert" => {
                        let keys = keys(client, request, &table).await?;
                        let record = request.get("record").and_then(Value::as_object);
                        statements::upsert(&table, &keys, record.unwrap_or(&Map::new()))?
                    }
                    _ => {
                        let keys = keys(client, request, &table).await?;
                        return count(client, &statements::delete(&table, &keys)?).await;
                    }
                };
                rows(client, &sql, true, caps).await
            }
        }
    }

    async fn begin(
        &self,
        request: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        let target = self.named_target(request)?;
        let mut guard = self.transaction.lock().await;
        if let Some(open) = guard.as_ref() {
            return Err(DbError::Invalid(format!(
                "a transaction is already open on {:?}: transactions do not nest",
                open.name
            )));
        }
        let client = self.pools.get(target, deadline).await?;
        // The transaction cannot outlive the request, even idle.
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {}",
                remaining_ms(deadline)
            ))
            .await
            .map_err(sql_error)?;
        *guard = Some(OpenTransaction {
            name: target.name.clone(),
            client,
            failed: false,
        });
        Ok(b"{}".to_vec())
    }

    async fn end(&self, request: &Map<String, Value>, commit: bool) -> Result<Vec<u8>, DbError> {
        let target = self.named_target(request)?;
        let mut guard = self.transaction.lock().await;
        let open = match guard.take() {
            Some(open) if open.name == target.name => open,
            other => {
                *guard = other;
                return Err(DbError::Invalid(format!(
                    "no transaction is open on {:?}",
                    target.name
                )));
            }
        };
        if commit && open.failed {
            open.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(sql_error)?;
            return Err(DbError::Sql {
                sqlstate: "25P02".into(),
                message: "a statement in the transaction failed, so it was rolled back".into(),
            });
        }
        open.client
            .batch_execute(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .map_err(sql_error)?;
        Ok(b"{}".to_vec())
    }
}

impl Drop for TenantDatabaseAccess {
    /// A transaction still open here was not finished (the request was cancelled): its
    /// connection is closed, which makes PostgreSQL roll it back, instead of being pooled.
    fn drop(&mut self) {
        if let Some(open) = self.transaction.get_mut().take() {
            drop(deadpool_postgres::Object::take(open.client));
        }
    }
}

/// The primary-key values a write names: `pk_columns` (column → value), or `pk`, a value of
/// the table's one-column primary key.
async fn keys(
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

/// The time a statement may take: the request's remaining time, less a tenth of it (at most
/// 500 ms) so that the handler still has time to answer when PostgreSQL cancels the statement.
fn remaining_ms(deadline: Instant) -> u128 {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let margin = (remaining / 10).min(std::time::Duration::from_millis(500));
    (remaining - margin).as_millis().max(1)
}
