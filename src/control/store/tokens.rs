//! Tokens: recorded at issue (never their values), listed and revoked.

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;
use crate::control::model::TokenRecord;

impl Store {
    /// Records a newly issued token; every node learns of it (a token pubfn has no record of
    /// is refused).
    pub async fn insert_token(
        &self,
        tenant: &str,
        token: &TokenRecord,
        expires_unix: Option<i64>,
    ) -> Result<(), ControlError> {
        let expires = expires_unix.map(|s| s as f64);
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO pubfn.tokens (jti, tenant, name, admin, endpoints, expires_at)
                 VALUES ($1, $2, $3, $4, $5, to_timestamp($6))",
                &[
                    &token.jti,
                    &tenant,
                    &token.name,
                    &token.admin,
                    &token.endpoints,
                    &expires,
                ],
            )
            .await?;
        notify(&client, tenant, ChangeKind::Tokens).await
    }

    /// The tenant's tokens, newest first; never their values.
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT jti, name, admin, endpoints, ",
                    ts!("created_at" AS "created_at"),
                    ", ",
                    ts!("expires_at" AS "expires_at"),
                    ", ",
                    ts!("revoked_at" AS "revoked_at"),
                    " FROM pubfn.tokens WHERE tenant = $1 ORDER BY created_at DESC, jti"
                ),
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRecord {
                jti: r.get(0),
                name: r.get(1),
                admin: r.get(2),
                endpoints: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                revoked_at: r.get(6),
            })
            .collect())
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, tenant: &str, jti: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.tokens SET revoked_at = coalesce(revoked_at, now()) WHERE tenant = $1 AND jti = $2",
                &[&tenant, &jti],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!(
                "no token {jti:?} in tenant {tenant:?}"
            )));
        }
        notify(&client, tenant, ChangeKind::Tokens).await
    }
}
