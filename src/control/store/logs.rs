//! Handlers' request logs: written in batches, read by endpoint, pruned by age and count.

use super::Store;
use crate::control::ControlError;
use crate::control::model::LogEntry;

impl Store {
    /// Writes a batch of log entries in one statement.
    pub async fn insert_logs(&self, entries: &[LogEntry]) -> Result<(), ControlError> {
        if entries.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&LogEntry) -> String| entries.iter().map(f).collect::<Vec<String>>();
        let tenants = column(|e| e.tenant.clone());
        let endpoints = column(|e| e.endpoint.clone());
        let request_ids = column(|e| e.request_id.clone());
        let methods = column(|e| e.method.clone());
        let paths = column(|e| e.path.clone());
        let outputs = column(|e| e.output.clone());
        let versions: Vec<i32> = entries.iter().map(|e| e.version).collect();
        let statuses: Vec<i16> = entries.iter().map(|e| e.status as i16).collect();
        let durations: Vec<f64> = entries.iter().map(|e| e.duration_ms).collect();
        let errors: Vec<Option<String>> = entries.iter().map(|e| e.error.clone()).collect();
        let tracebacks: Vec<Option<String>> = entries.iter().map(|e| e.traceback.clone()).collect();
        let usages: Vec<Option<serde_json::Value>> = entries
            .iter()
            .map(|e| e.usage.and_then(|u| serde_json::to_value(u).ok()))
            .collect();
        let client = self.client().await?;
        // Prepared once per connection: parsing and planning this statement for every batch
        // showed in profiles.
        let insert = client
            .prepare_cached(
                "INSERT INTO pubfn.request_logs
                   (tenant, endpoint, version, request_id, method, path, status, duration_ms,
                    output, error, traceback, usage)
                 SELECT tenant, endpoint, version, request_id, method, path, status, duration_ms,
                        output, error, traceback, usage
                 FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[],
                   $6::text[], $7::int2[], $8::float8[], $9::text[], $10::text[], $11::text[],
                   $12::jsonb[])
                   WITH ORDINALITY AS u(tenant, endpoint, version, request_id, method, path, status,
                        duration_ms, output, error, traceback, usage, ord)
                 -- A tenant deleted meanwhile takes its logs with it.
                 WHERE EXISTS (SELECT 1 FROM pubfn.tenants t WHERE t.name = u.tenant)
                 -- Ids follow arrival order, which `since=` and newest-first rely on.
                 ORDER BY ord",
            )
            .await?;
        client
            .execute(
                &insert,
                &[
                    &tenants,
                    &endpoints,
                    &versions,
                    &request_ids,
                    &methods,
                    &paths,
                    &statuses,
                    &durations,
                    &outputs,
                    &errors,
                    &tracebacks,
                    &usages,
                ],
            )
            .await?;
        Ok(())
    }

    /// An endpoint's newest entries (at most `limit`), newer than entry id `since` if given,
    /// newest first.
    pub async fn logs(
        &self,
        tenant: &str,
        endpoint: &str,
        limit: i64,
        since: Option<i64>,
    ) -> Result<Vec<LogEntry>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT id, tenant, endpoint, version, request_id, method, path, status, ",
                    "duration_ms, output, error, traceback, usage, ",
                    ts!("created_at" AS "created_at"),
                    " FROM pubfn.request_logs
                     WHERE tenant = $1 AND endpoint = $2 AND ($4::int8 IS NULL OR id > $4)
                     ORDER BY id DESC LIMIT $3"
                ),
                &[&tenant, &endpoint, &limit, &since],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LogEntry {
                id: Some(r.get("id")),
                tenant: r.get("tenant"),
                endpoint: r.get("endpoint"),
                version: r.get("version"),
                request_id: r.get("request_id"),
                method: r.get("method"),
                path: r.get("path"),
                status: r.get::<_, i16>("status") as u16,
                duration_ms: r.get("duration_ms"),
                output: r.get("output"),
                error: r.get("error"),
                traceback: r.get("traceback"),
                usage: r
                    .get::<_, Option<serde_json::Value>>("usage")
                    .and_then(|u| serde_json::from_value(u).ok()),
                created_at: Some(r.get("created_at")),
            })
            .collect())
    }

    /// Deletes entries older than `max_age_secs`, and each tenant's beyond its newest
    /// `max_per_tenant`; returns how many went.
    pub async fn prune_logs(
        &self,
        max_age_secs: i64,
        max_per_tenant: i64,
    ) -> Result<u64, ControlError> {
        let client = self.client().await?;
        let aged = client
            .execute(
                "DELETE FROM pubfn.request_logs WHERE created_at < now() - make_interval(secs => $1)",
                &[&(max_age_secs as f64)],
            )
            .await?;
        let excess = client
            .execute(
                "DELETE FROM pubfn.request_logs WHERE id IN (
                   SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY tenant ORDER BY id DESC) AS n
                                   FROM pubfn.request_logs) ranked
                   WHERE n > $1)",
                &[&max_per_tenant],
            )
            .await?;
        Ok(aged + excess)
    }
}
