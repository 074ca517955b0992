//! `with dbconn.transaction(db):` — one transaction per request at a time, on one database,
//! that every call on that database joins until it commits or rolls back.

use std::time::Instant;

use super::super::DbError;
use super::super::pool::reset_and_begin;
use super::super::request::Target;
use super::super::results::sql_error;
use super::{OpenTransaction, TenantDatabaseAccess, remaining_ms};

impl TenantDatabaseAccess {
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

    pub(super) async fn begin(
        &self,
        target: &Target,
        deadline: Instant,
    ) -> Result<Vec<u8>, DbError> {
        let target = self.target(target.name())?;
        let mut guard = self.transaction.lock().await;
        if let Some(open) = guard.as_ref() {
            return Err(DbError::Invalid(format!(
                "a transaction is already open on {:?}: transactions do not nest",
                open.name
            )));
        }
        let client = self.pools.get(target, deadline).await?;
        // The transaction cannot outlive the request, even idle.
        let begin = format!(
            "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {}{}",
            remaining_ms(deadline),
            self.session_sql
        );
        reset_and_begin(&client, &begin).await?;
        *guard = Some(OpenTransaction {
            name: target.name.clone(),
            client,
            failed: false,
        });
        Ok(b"{}".to_vec())
    }

    pub(super) async fn end(&self, target: &Target, commit: bool) -> Result<Vec<u8>, DbError> {
        let target = self.target(target.name())?;
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
