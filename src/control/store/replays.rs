//! Recordings of failed calls (`pubfn replay`): sealed at rest, a bounded number per tenant,
//! expiring. The recording itself is opaque bytes here (the application's JSON).

use serde::Serialize;

use super::Store;
use crate::control::ControlError;

/// A kept recording, as listed: never its contents.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingInfo {
    /// The request's id.
    pub request_id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The status the client got.
    pub status: u16,
    /// How many capability calls it holds.
    pub calls: i32,
    /// When it was kept (RFC 3339).
    pub created_at: String,
    /// When it goes (RFC 3339).
    pub expires_at: String,
}

/// A recording to keep.
pub struct NewRecording<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The request's id.
    pub request_id: &'a str,
    /// The endpoint.
    pub endpoint: &'a str,
    /// The status the client got.
    pub status: u16,
    /// Capability calls held.
    pub calls: usize,
    /// The recording, unsealed.
    pub contents: &'a [u8],
}

fn context(tenant: &str, request_id: &str) -> String {
    format!("replay {tenant}/{request_id}")
}

impl Store {
    /// Seals and keeps `recording` for `ttl_secs`, then drops the tenant's oldest beyond
    /// `max_per_tenant` and every expired one.
    pub async fn keep_recording(
        &self,
        recording: &NewRecording<'_>,
        ttl_secs: i64,
        max_per_tenant: i64,
    ) -> Result<(), ControlError> {
        let sealed = self.key.seal(
            recording.contents,
            &context(recording.tenant, recording.request_id),
        );
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO pubfn.replays (tenant, request_id, endpoint, status, calls, expires_at, sealed)
                 VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7)
                 ON CONFLICT (tenant, request_id) DO NOTHING",
                &[
                    &recording.tenant,
                    &recording.request_id,
                    &recording.endpoint,
                    &(recording.status as i16),
                    &i32::try_from(recording.calls).unwrap_or(i32::MAX),
                    &(ttl_secs as f64),
                    &sealed,
                ],
            )
            .await?;
        client
            .execute(
                "DELETE FROM pubfn.replays WHERE expires_at < now()
                    OR (tenant = $1 AND request_id IN (
                        SELECT request_id FROM pubfn.replays WHERE tenant = $1
                        ORDER BY created_at DESC, request_id OFFSET $2))",
                &[&recording.tenant, &max_per_tenant],
            )
            .await?;
        Ok(())
    }

    /// Deletes expired recordings; returns how many went.
    pub async fn prune_recordings(&self) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute("DELETE FROM pubfn.replays WHERE expires_at < now()", &[])
            .await?)
    }

    /// The tenant's recording of request `request_id`, unsealed; `NotFound` if there is none
    /// (never kept, expired, or dropped for newer ones).
    pub async fn recording(&self, tenant: &str, request_id: &str) -> Result<Vec<u8>, ControlError> {
        self.tenant(tenant).await?;
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT sealed FROM pubfn.replays
                 WHERE tenant = $1 AND request_id = $2 AND expires_at >= now()",
                &[&tenant, &request_id],
            )
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "tenant {tenant:?} has no recording of request {request_id:?} \
                     (only failed calls are recorded, and not for long)"
                ))
            })?;
        let sealed: Vec<u8> = row.get(0);
        Ok(self.key.open(&sealed, &context(tenant, request_id))?)
    }

    /// The tenant's recordings, newest first.
    pub async fn recordings(&self, tenant: &str) -> Result<Vec<RecordingInfo>, ControlError> {
        self.tenant(tenant).await?;
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT request_id, endpoint, status, calls, ",
                    ts!("created_at" AS "created_at"),
                    ", ",
                    ts!("expires_at" AS "expires_at"),
                    " FROM pubfn.replays WHERE tenant = $1 AND expires_at >= now()
                      ORDER BY created_at DESC, request_id"
                ),
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RecordingInfo {
                request_id: r.get(0),
                endpoint: r.get(1),
                status: r.get::<_, i16>(2) as u16,
                calls: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
            })
            .collect())
    }

    /// The current values of the tenant's secrets named in `names` that it still has.
    pub async fn secret_values(
        &self,
        tenant: &str,
        names: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>, ControlError> {
        let sealed = self.sealed_secrets(tenant).await?;
        names
            .iter()
            .filter_map(|name| sealed.get(*name).map(|s| (*name, s)))
            .map(|(name, s)| Ok((name.to_string(), self.open_secret(tenant, name, s)?)))
            .collect()
    }
}
