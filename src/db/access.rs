//! One tenant's databases as a host capability (guest-sdk/ABI.md, op 16): each call checks
//! the database name against the tenant's own, runs in a transaction whose statements cannot
//! outlive the request, and returns JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{Mutex, MutexGuard};

use super::capability::{DatabaseCapability, DbError};
use super::pool::{DbTarget, TenantPools, reset_and_begin};
use super::request::{DbRequest, Fetch, Target, Write};
use super::results::{ResultCaps, count, rows, rows_read_only, sql_error};
use super::statements::{self, WriteKind};

mod keys;
mod session;
mod transaction;

pub use session::DbSession;

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
    /// Calls made so far (each a round trip to PostgreSQL, or a refusal before one).
    calls: AtomicU64,
    /// What every transaction begins with after `BEGIN`: the caller's claims, when the
    /// endpoint asks for them (`db_claims`); else nothing.
    session_sql: String,
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

#[async_trait::async_trait]
impl DatabaseCapability for TenantDatabaseAccess {
    async fn call(&self, request: &DbRequest, deadline: Instant) -> Result<Vec<u8>, DbError> {
        let started = Instant::now();
        let outcome = self.dispatch(request, deadline).await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        outcome
    }
}

impl TenantDatabaseAccess {
    async fn dispatch(&self, request: &DbRequest, deadline: Instant) -> Result<Vec<u8>, DbError> {
        match request {
            DbRequest::Connect { connection } => {
                self.target(connection)?;
                Ok(b"{}".to_vec())
            }
            DbRequest::Begin(target) => self.begin(target, deadline).await,
            DbRequest::Commit(target) => self.end(target, true).await,
            DbRequest::Rollback(target) => self.end(target, false).await,
            DbRequest::Fetch(fetch) => self.fetch(fetch, deadline).await,
            DbRequest::Insert(write) => self.write(WriteKind::Insert, write, deadline).await,
            DbRequest::Update(write) => self.write(WriteKind::Update, write, deadline).await,
            DbRequest::Upsert(write) => self.write(WriteKind::Upsert, write, deadline).await,
            DbRequest::Delete(write) => self.write(WriteKind::Delete, write, deadline).await,
            DbRequest::Execute(execute) => {
                let sql = statements::execute(execute)?;
                self.in_transaction(&execute.target, deadline, async |client| {
                    count(client, &sql).await
                })
                .await
            }
        }
    }

    /// Database calls made so far.
    pub fn round_trips(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
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
            calls: AtomicU64::new(0),
            session_sql: String::new(),
        }
    }

    /// The same access, every transaction of which carries `session`'s settings.
    pub fn with_session(mut self, session: Option<&DbSession>) -> Self {
        self.session_sql = session.map(DbSession::sql).unwrap_or_default();
        self
    }

    /// The tenant's database of that name; no other can be named.
    fn target(&self, name: &str) -> Result<&DbTarget, DbError> {
        self.targets
            .get(name)
            .ok_or_else(|| DbError::NotFound(format!("unknown database {name:?}")))
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

    /// A fetch: in the open transaction on its database if there is one, else in a read-only
    /// transaction of its own, begun and committed with the statement itself (fewer round
    /// trips).
    async fn fetch(&self, fetch: &Fetch, deadline: Instant) -> Result<Vec<u8>, DbError> {
        let sql = statements::select(fetch)?;
        let target = self.target(fetch.target.name())?;
        let connection = self.connection(target, deadline).await?;
        if matches!(connection, Connection::Pooled(_)) {
            let start = format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {}{}",
                remaining_ms(deadline),
                self.session_sql
            );
            let outcome = rows_read_only(connection.client(), &start, &sql, &self.caps).await;
            if outcome.is_err() {
                let _ = connection.client().batch_execute("ROLLBACK").await;
            }
            return outcome;
        }
        drop(connection);
        let caps = &self.caps;
        self.in_transaction(&fetch.target, deadline, async |client| {
            rows(client, &sql, false, caps).await
        })
        .await
    }

    /// A write; its primary key's columns are looked up in the catalogue if it names a value.
    async fn write(
        &self,
        kind: WriteKind,
        write: &Write,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        let caps = &self.caps;
        self.in_transaction(&write.target, deadline, async |client| {
            let keys = match kind {
                WriteKind::Insert => Default::default(),
                _ => keys(client, write).await?,
            };
            let sql = statements::write(kind, write, &keys)?;
            match kind {
                WriteKind::Delete => count(client, &sql).await,
                _ => rows(client, &sql, true, caps).await,
            }
        })
        .await
    }

    /// Runs `work` in the open transaction on the target's database if there is one, else in
    /// a transaction of its own, committed if it succeeded (a write is acknowledged only once
    /// its COMMIT is) and rolled back if not.
    async fn in_transaction<W>(
        &self,
        target: &Target,
        deadline: Instant,
        work: W,
    ) -> Result<Vec<u8>, DbError>
    where
        W: AsyncFnOnce(&tokio_postgres::Client) -> Result<Vec<u8>, DbError>,
    {
        let target = self.target(target.name())?;
        let mut connection = self.connection(target, deadline).await?;
        let timeout = format!("SET LOCAL statement_timeout = {}", remaining_ms(deadline));
        let in_transaction = matches!(connection, Connection::Transaction(_));
        let started = if in_transaction {
            connection
                .client()
                .batch_execute(&timeout)
                .await
                .map_err(sql_error)
        } else {
            let begin = format!("BEGIN; {timeout}{}", self.session_sql);
            reset_and_begin(connection.client(), &begin).await
        };
        let outcome = match started {
            Ok(()) => work(connection.client()).await,
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
            (Ok(_), Err(e)) => Err(sql_error(e)),
            (outcome, _) => outcome,
        }
    }
}

/// The time a statement may take: the request's remaining time, less a tenth of it (at most
/// 500 ms) so that the handler still has time to answer when PostgreSQL cancels the statement.
pub(super) fn remaining_ms(deadline: Instant) -> u128 {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let margin = (remaining / 10).min(std::time::Duration::from_millis(500));
    (remaining - margin).as_millis().max(1)
}
