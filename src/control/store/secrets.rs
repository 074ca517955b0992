//! Tenants' secrets: sealed at rest, readable only by the tenant's handlers
//! (`pq.get_secret`), listed by name only through the admin API.

use std::collections::HashMap;

use serde::Serialize;

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;

/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// A secret as the admin API shows it: never its value.
#[derive(Debug, Clone, Serialize)]
pub struct SecretInfo {
    /// Its name.
    pub name: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
}

fn context(tenant: &str, name: &str) -> String {
    format!("secret {tenant}/{name}")
}

/// The names handlers pass for secrets and stored connections (`pq.get_secret(name)`,
/// `pq.connect(name)`): letters, digits, `_`, `.` and `-`, starting with a letter or `_`, at
/// most 128 bytes, as the tables' CHECK constraints also say.
pub(super) fn check_resource_name(kind: &str, name: &str) -> Result<(), ControlError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "{kind} name {name:?}: letters, digits, '_', '.' and '-', starting with a letter \
             or '_', at most 128"
        )))
    }
}

impl Store {
    /// Sets (or replaces) the tenant's secret `name`.
    pub async fn set_secret(
        &self,
        tenant: &str,
        name: &str,
        value: &str,
    ) -> Result<SecretInfo, ControlError> {
        self.tenant(tenant).await?;
        check_resource_name("secret", name)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(ControlError::Invalid(format!(
                "secret value over {MAX_SECRET_BYTES} bytes"
            )));
        }
        let sealed = self.key.seal(value.as_bytes(), &context(tenant, name));
        let client = self.client().await?;
        let row = client
            .query_one(
                concat!(
                    "INSERT INTO pubfn.tenant_secrets (tenant, name, sealed) VALUES ($1, $2, $3) ",
                    "ON CONFLICT (tenant, name) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now() ",
                    "RETURNING ",
                    ts!("updated_at" AS "updated_at")
                ),
                &[&tenant, &name, &sealed],
            )
            .await?;
        notify(&client, tenant, ChangeKind::Secrets).await?;
        Ok(SecretInfo {
            name: name.to_string(),
            updated_at: row.get(0),
        })
    }

    /// Deletes the tenant's secret `name`.
    pub async fn delete_secret(&self, tenant: &str, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM pubfn.tenant_secrets WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!(
                "tenant {tenant:?} has no secret {name:?}"
            )));
        }
        notify(&client, tenant, ChangeKind::Secrets).await
    }

    /// The tenant's secrets, by name, without their values.
    pub async fn secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>, ControlError> {
        self.tenant(tenant).await?;
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT name, ",
                    ts!("updated_at" AS "updated_at"),
                    " FROM pubfn.tenant_secrets WHERE tenant = $1 ORDER BY name"
                ),
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SecretInfo {
                name: r.get(0),
                updated_at: r.get(1),
            })
            .collect())
    }

    /// The tenant's secrets still sealed, for the data plane's cache: they are opened only
    /// when a handler asks for one.
    pub async fn sealed_secrets(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, Vec<u8>>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, sealed FROM pubfn.tenant_secrets WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Opens a sealed secret of [`Store::sealed_secrets`].
    pub fn open_secret(
        &self,
        tenant: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<String, ControlError> {
        Ok(self.key.open_text(sealed, &context(tenant, name))?)
    }
}
