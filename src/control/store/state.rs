//! Endpoints' small persistent state (`pq.get_state()` / `pq.set_state(dict)`).

use serde_json::Value;

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

    /// Replaces the endpoint's state (the caller checked its size).
    pub async fn set_endpoint_state(
        &self,
        tenant: &str,
        endpoint: &str,
        value: &Value,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO pubfn.endpoint_state (tenant, endpoint, value) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, endpoint)
                 DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                &[&tenant, &endpoint, value],
            )
            .await?;
        Ok(())
    }
}
