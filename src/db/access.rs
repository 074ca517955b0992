//! One tenant's databases as a host capability (guest-sdk/ABI.md, op 16): each call checks
//! the database name against the tenant's own, runs in a transaction whose statements cannot
//! outlive the request, and returns JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use super::capability::{DatabaseCapability, DbError, DbFuture};
use super::pool::{DbTarget, TenantPools, reset_and_begin};
use super::run::{ResultCaps, count, rows, rows_read_only, sql_error};
use super::statements::{self, qualified_table};

#[doc(hidden)]
pub mod keys;
mod transaction;

use keys::keys;

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
    /// Time spent in calls so far, in nanoseconds.
    busy_nanos: AtomicU64,
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
            let started = Instant::now();
            let outcome = self.dispatch(request, deadline).await;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
            outcome
        })
    }
}

impl TenantDatabaseAccess {
    async fn dispatch(
        &self,
        request: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        {
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
        }
    }

    /// Time spent in database calls so far.
    pub fn time_spent(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }

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
            busy_nanos: AtomicU64::new(0),
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
        if op == "fetch" && !in_transaction {
            // Started and committed by the fetch itself, with fewer round trips.
            let sql = select_statement(request)?;
            let outcome = rows_read_only(connection.client(), &start, &sql, &self.caps).await;
            if outcome.is_err() {
                let _ = connection.client().batch_execute("ROLLBACK").await;
            }
            return outcome;
        }
        let started = if in_transaction {
            connection
                .client()
                .batch_execute(&start)
                .await
                .map_err(sql_error)
        } else {
            reset_and_begin(connection.client(), &start).await
        };
        let outcome = match started {
            Ok(()) => self.run(op, request, connection.client()).await,
            Err(e) => Err(e),
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
            "fetch" => rows(client, &select_statement(request)?, false, caps).await,
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
}

/// The SELECT of a `fetch` request.
fn select_statement(request: &Map<String, Value>) -> Result<super::sql::Sql, DbError> {
    let options = request
        .get("options")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let sql = statements::select(request, &options)?;
    statements::refuse_session_control(&sql)?;
    Ok(sql)
}

/// The time a statement may take: the request's remaining time, less a tenth of it (at most
/// 500 ms) so that the handler still has time to answer when PostgreSQL cancels the statement.
pub(super) fn remaining_ms(deadline: Instant) -> u128 {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let margin = (remaining / 10).min(std::time::Duration::from_millis(500));
    (remaining - margin).as_millis().max(1)
}
