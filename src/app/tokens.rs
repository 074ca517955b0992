//! Tokens: who a caller is (the operator's key, a tenant admin token, a data-plane token),
//! and issuing, listing and revoking tenants' tokens.

use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{App, AppError};
use crate::auth::{AuthError, TokenRequest, jwt};
use crate::control::TokenState;
use crate::control::model::TokenRecord;
use crate::control::registry::TenantView;

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator (the admin key): every tenant, and the operator-only calls.
    Operator,
    /// A tenant admin (a tenant token with the admin claim): its own tenant only.
    TenantAdmin(String),
}

impl Caller {
    /// Refuses a tenant admin of another tenant.
    pub fn may_manage(&self, tenant: &str) -> Result<(), AppError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(own) if own == tenant => Ok(()),
            Caller::TenantAdmin(_) => Err(AuthError::Forbidden("not your tenant".into()).into()),
        }
    }

    /// Refuses anyone but the operator.
    pub fn operator_only(&self) -> Result<(), AppError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(_) => Err(AuthError::Forbidden("operator only".into()).into()),
        }
    }
}

/// A token just made: its value is shown now and never again.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Expiry, Unix seconds; `None` for a token without expiry.
    pub expires_at: Option<i64>,
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

impl App {
    /// Who presents `token` to the admin API: the operator, or a tenant admin (whose token
    /// must be one pubfn issued with the admin claim).
    pub async fn admin_caller(&self, token: &str) -> Result<Caller, AppError> {
        if secrets_equal(token.as_bytes(), self.admin_key.as_bytes()) {
            return Ok(Caller::Operator);
        }
        let tenant =
            jwt::claimed_tenant(token).ok_or_else(|| AuthError::Invalid("malformed".into()))?;
        let view = self
            .registry
            .tenant(&tenant)
            .await?
            .ok_or_else(|| AuthError::Invalid("unknown tenant".into()))?;
        let claims = self.verify_token(&view, token).await?;
        if !claims.admin {
            return Err(
                AuthError::Forbidden("data-plane tokens cannot call the admin API".into()).into(),
            );
        }
        Ok(Caller::TenantAdmin(claims.aud))
    }

    /// Verifies one of `tenant`'s tokens: signature and claims, then that pubfn issued its
    /// `jti` and has not revoked it (a token signed with a leaked secret but never issued is
    /// refused).
    pub async fn verify_token(
        &self,
        tenant: &TenantView,
        token: &str,
    ) -> Result<jwt::Claims, AppError> {
        let claims = jwt::verify(token, &tenant.name, &tenant.jwt_secret)?;
        match self.registry.token_state(tenant, &claims.jti).await? {
            TokenState::Live => Ok(claims),
            TokenState::Revoked => Err(AuthError::Invalid("revoked".into()).into()),
            TokenState::NeverIssued => {
                Err(AuthError::Invalid("not a token pubfn issued".into()).into())
            }
        }
    }

    /// Verifies a data-plane token of `tenant`. A valid token of another tenant is refused as
    /// forbidden (403) rather than unauthenticated (401).
    pub async fn verify_data_token(
        &self,
        tenant: &TenantView,
        token: &str,
    ) -> Result<jwt::Claims, AppError> {
        match self.verify_token(tenant, token).await {
            Ok(claims) => Ok(claims),
            Err(error) => {
                if let Some(other) = jwt::claimed_tenant(token).filter(|aud| *aud != tenant.name)
                    && let Some(other) = self.registry.tenant(&other).await?
                    && self.verify_token(&other, token).await.is_ok()
                {
                    return Err(AuthError::Forbidden(
                        "this token belongs to another tenant".into(),
                    )
                    .into());
                }
                Err(error)
            }
        }
    }

    /// The claims of a data-plane token of `tenant` (`GET /{tenant}/_whoami`).
    pub async fn whoami(&self, tenant: &str, token: &str) -> Result<jwt::Claims, AppError> {
        let view = self
            .registry
            .tenant(tenant)
            .await?
            .ok_or(AppError::NoSuchEndpoint)?;
        self.verify_data_token(&view, token).await
    }

    /// Makes and records a token for `tenant`; only the operator may make admin tokens.
    pub async fn issue_token(
        &self,
        caller: &Caller,
        tenant: &str,
        request: TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        caller.may_manage(tenant)?;
        request.validate().map_err(AppError::Invalid)?;
        if request.admin {
            caller.operator_only()?;
        }
        let (auth, _) = self.store.tenant_auth(tenant).await?.ok_or_else(|| {
            crate::control::ControlError::NotFound(format!("no tenant {tenant:?}"))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let exp = if request.no_expiry {
            None
        } else {
            let lifetime = request
                .expires_in
                .unwrap_or(jwt::DEFAULT_LIFETIME_SECS)
                .min(10 * 365 * 24 * 3600);
            Some(now + lifetime as i64)
        };
        let mut jti = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
        let claims = jwt::Claims {
            iss: jwt::ISSUER.into(),
            aud: tenant.into(),
            sub: request.name.clone(),
            jti: hex::encode(jti),
            iat: now,
            nbf: now,
            exp,
            admin: request.admin,
            endpoints: request.endpoints.clone(),
            custom: request.claims.clone(),
        };
        let token = jwt::issue(&auth.jwt_secret, &claims).map_err(AppError::Signing)?;
        let record = TokenRecord {
            jti: claims.jti.clone(),
            name: request.name,
            admin: request.admin,
            endpoints: request.endpoints,
            created_at: String::new(),
            expires_at: None,
            revoked_at: None,
        };
        self.store.insert_token(tenant, &record, exp).await?;
        self.changed(tenant, crate::control::ChangeKind::Tokens)
            .await;
        Ok(IssuedToken {
            token,
            jti: claims.jti,
            expires_at: exp,
        })
    }

    /// The tenant's tokens, newest first (never their values).
    pub async fn tokens(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<TokenRecord>, AppError> {
        caller.may_manage(tenant)?;
        self.store.tenant(tenant).await?;
        Ok(self.store.tokens(tenant).await?)
    }

    /// Revokes a token, on every node.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        tenant: &str,
        jti: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.store.revoke_token(tenant, jti).await?;
        self.changed(tenant, crate::control::ChangeKind::Tokens)
            .await;
        Ok(())
    }
}
