//! The secrets capability (`pq.get_secret(name)`): a tenant's handlers read the values its
//! operator set through the admin API.

use super::AbiError;
use crate::BoxError;

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The tenant has no secret of that name (guest's fault).
    #[error("no such secret")]
    NotFound,
    /// The store holding it failed (host's fault; logged, never shown to the guest).
    #[error("secrets unavailable")]
    Unavailable(#[source] BoxError),
}

/// One tenant's secrets.
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`.
    async fn secret(&self, name: &str) -> Result<String, SecretError>;
}

/// `PQ_OP_SECRET`: the argument is the secret's UTF-8 name, the result its UTF-8 value.
pub async fn get(source: Option<&dyn SecretSource>, arg: &[u8]) -> Result<Vec<u8>, AbiError> {
    let name = std::str::from_utf8(arg)
        .ok()
        .filter(|name| !name.is_empty() && name.len() <= 128)
        .ok_or_else(|| {
            AbiError::new(
                AbiError::INVALID,
                "a secret name is 1 to 128 bytes of UTF-8",
            )
        })?;
    let source = source.ok_or_else(|| {
        AbiError::new(
            AbiError::UNAVAILABLE,
            "no secrets in this sandbox (pq.get_secret needs a tenant's endpoint)",
        )
    })?;
    match source.secret(name).await {
        Ok(value) => Ok(value.into_bytes()),
        Err(SecretError::NotFound) => Err(AbiError::new(
            AbiError::NOT_FOUND,
            format!("no secret {name:?}"),
        )),
        Err(error @ SecretError::Unavailable(_)) => {
            tracing::error!("reading a secret failed: {error:?}");
            Err(AbiError::new(
                AbiError::HOST,
                "secrets are unavailable right now",
            ))
        }
    }
}
