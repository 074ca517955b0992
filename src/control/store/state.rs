//! Endpoints' small persistent state (`pq.get_state()` / `pq.set_state(dict)`).

use serde_json::{Map, Value};

use super::Store;
use crate::control::ControlError;

impl Store {
    /// The endpoint's state; an empty object if it never set one.
    pub async fn endpoint_state(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> Result<Value, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT value FROM pubfn.endpoint_state WHERE tenant = $1 AND endpoint = $2",
                &[&tenant, &endpoint],
            )
            .await?;
        Ok(row
            .map(|r| r.get(0))
            .unwrap_or_else(|| Value::Object(Default::default())))
    }

    /// Merges `patch`'s top-level keys into the endpoint's state, as Peliqan's `set_state`
    /// does; concurrent merges each see the other's keys (the row is locked). Returns the
    /// merged state's size in bytes of JSON, and stores it only if that is at most
    /// `max_bytes`.
    pub async fn merge_endpoint_state(
        &self,
        tenant: &str,
        endpoint: &str,
        patch: &Map<String, Value>,
        max_bytes: usize,
    ) -> Result<Result<(), usize>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let current: Option<Value> = tx
            .query_opt(
                "SELECT value FROM pubfn.endpoint_state WHERE tenant = $1 AND endpoint = $2
                 FOR UPDATE",
                &[&tenant, &endpoint],
            )
            .await?
            .map(|row| row.get(0));
        let mut merged = match current {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        merged.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
        let merged = Value::Object(merged);
        let size = merged.to_string().len();
        if size > max_bytes {
            return Ok(Err(size));
        }
        tx.execute(
            "INSERT INTO pubfn.endpoint_state (tenant, endpoint, value) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, endpoint)
             DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            &[&tenant, &endpoint, &merged],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
