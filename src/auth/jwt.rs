//! Tenants' JSON Web Tokens: HS256 with a random 256-bit secret per tenant, the algorithm
//! pinned, and `exp`, `nbf`, `aud` (= the tenant) and `iss` checked here. Whether pubfn issued
//! the token's `jti` (and has not revoked it) is the caller's check, against the metadata.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// The `iss` of every token pubfn makes.
pub const ISSUER: &str = "pubfn";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// Why a request was not authenticated or not authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable `Authorization` header: 401.
    #[error("missing credentials: send 'Authorization: Bearer <token>' (or 'JWT <token>')")]
    Missing,
    /// The token is malformed, forged, expired, not yet valid or revoked: 401.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token that may not do this: 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The tenant.
    pub aud: String,
    /// The token's name.
    pub sub: String,
    /// Unique id, for revocation.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds); absent only for tokens issued without expiry on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Whether it may call the tenant's admin API.
    #[serde(default)]
    pub admin: bool,
    /// The endpoints it is limited to; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// The tenant's own claims (`POST .../tokens {"claims"}`), beside pubfn's: what row-level
    /// security policies read from `request.jwt.claims` (e.g. `team`, `email`, `role`).
    #[serde(flatten)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// Claim names pubfn sets itself; a token's custom claims may not use them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "jti",
    "iat",
    "nbf",
    "exp",
    "admin",
    "endpoints",
];

/// Largest custom claims of one token, in bytes of JSON.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 4096;

/// What a token is asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A name for people.
    pub name: String,
    /// Lifetime in seconds (default one day).
    pub expires_in: Option<u64>,
    /// Endpoints it is limited to.
    pub endpoints: Option<Vec<String>>,
    /// Issue a token that never expires (server-side use).
    #[serde(default)]
    pub no_expiry: bool,
    /// A tenant admin token (only the operator may ask for one).
    #[serde(default)]
    pub admin: bool,
    /// Custom claims, for the tenant's row-level security policies.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl TokenRequest {
    /// Refuses a name that logs and lists could not show (empty, control characters, over 200
    /// characters) and endpoint names that no endpoint can have.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.chars().count() <= 200
            && !self.name.chars().any(char::is_control);
        if !name_ok {
            return Err("name: 1 to 200 characters, no control characters".into());
        }
        for endpoint in self.endpoints.iter().flatten() {
            let ok = endpoint.len() <= 64
                && endpoint.starts_with(|c: char| c.is_ascii_alphanumeric())
                && endpoint
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(format!("endpoints: {endpoint:?} is not an endpoint name"));
            }
        }
        if let Some(reserved) = self
            .claims
            .keys()
            .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
        {
            return Err(format!("claims: {reserved:?} is set by pubfn itself"));
        }
        if serde_json::to_vec(&self.claims).map_or(0, |j| j.len()) > MAX_CUSTOM_CLAIMS_BYTES {
            return Err(format!(
                "claims: more than {MAX_CUSTOM_CLAIMS_BYTES} bytes of JSON"
            ));
        }
        Ok(())
    }
}

/// Default token lifetime: one day.
pub const DEFAULT_LIFETIME_SECS: u64 = 24 * 3600;

/// Signs `claims` with the tenant's secret. It fails only if the claims cannot be encoded:
/// the host's fault, never the caller's.
pub fn issue(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

/// The token in an `Authorization` header value (`Bearer` or `JWT` scheme).
pub fn bearer_token(header: Option<&[u8]>) -> Result<&str, AuthError> {
    let value =
        std::str::from_utf8(header.ok_or(AuthError::Missing)?).map_err(|_| AuthError::Missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Missing)?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt")) {
        return Err(AuthError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        Err(AuthError::Missing)
    } else {
        Ok(token)
    }
}

/// The `aud` a token claims, unverified: only to pick which tenant's secret to check it with.
pub fn claimed_tenant(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Aud {
        aud: String,
    }
    let payload = token.split('.').nth(1)?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Aud>(&bytes).ok().map(|a| a.aud)
}

/// Verifies `token` as one of `tenant`'s: signature (HS256 only), issuer, audience and time
/// window. The caller then checks that pubfn issued its `jti` and has not revoked it.
pub fn verify(token: &str, tenant: &str, secret: &[u8]) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.set_audience(&[tenant]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["iss", "aud", "nbf"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| {
                AuthError::Invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "expired".into(),
                    ErrorKind::ImmatureSignature => "not valid yet".into(),
                    ErrorKind::InvalidAudience => "issued for another tenant".into(),
                    ErrorKind::InvalidAlgorithm => "algorithm not allowed (HS256 only)".into(),
                    ErrorKind::InvalidSignature => "bad signature".into(),
                    _ => "malformed".into(),
                })
            })?;
    // jsonwebtoken checks `exp` only where it reads as a u64, so a negative one (which `Claims`
    // takes) went unchecked: a token that never expires. Caught by fuzz/fuzz_targets/jwt.rs.
    if data.claims.exp.is_some_and(|exp| exp < 0) {
        return Err(AuthError::Invalid("expired".into()));
    }
    Ok(data.claims)
}

/// Whether `claims` allow calling `endpoint` on the data plane.
pub fn may_call(claims: &Claims, endpoint: &str) -> Result<(), AuthError> {
    match &claims.endpoints {
        Some(allowed) if !allowed.iter().any(|e| e == endpoint) => Err(AuthError::Forbidden(
            format!("this token may not call endpoint {endpoint:?}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp: Option<i64>) -> Claims {
        let now = now();
        Claims {
            iss: ISSUER.into(),
            aud: aud.into(),
            sub: "t".into(),
            jti: "j1".into(),
            iat: now,
            nbf: now,
            exp,
            admin: false,
            endpoints: None,
            custom: Default::default(),
        }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_valid_token_verifies() {
        let token = issue(
            b"k".repeat(32).as_slice(),
            &claims("acme", Some(now() + 60)),
        )
        .unwrap();
        let secret = b"k".repeat(32);
        assert_eq!(verify(&token, "acme", &secret).unwrap().jti, "j1");
    }

    #[test]
    fn attacks_are_rejected() {
        let secret = b"k".repeat(32);
        let good = issue(&secret, &claims("acme", Some(now() + 60))).unwrap();
        let bad = |token: &str| verify(token, "acme", &secret).unwrap_err();
        // alg none: header {"alg":"none"}, no signature.
        let parts: Vec<&str> = good.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        assert!(matches!(
            bad(&format!("{none_header}.{}.", parts[1])),
            AuthError::Invalid(_)
        ));
        // Another secret.
        let other = issue(&b"x".repeat(32), &claims("acme", Some(now() + 60))).unwrap();
        assert_eq!(bad(&other), AuthError::Invalid("bad signature".into()));
        // Expired, immature, other audience.
        assert_eq!(
            bad(&issue(&secret, &claims("acme", Some(now() - 60))).unwrap()),
            AuthError::Invalid("expired".into())
        );
        let mut future = claims("acme", Some(now() + 600));
        future.nbf = now() + 300;
        assert_eq!(
            bad(&issue(&secret, &future).unwrap()),
            AuthError::Invalid("not valid yet".into())
        );
        assert_eq!(
            bad(&issue(&secret, &claims("other", Some(now() + 60))).unwrap()),
            AuthError::Invalid("issued for another tenant".into())
        );
        // Tampered payload.
        let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        assert!(matches!(bad(&tampered), AuthError::Invalid(_)));
    }

    #[test]
    fn a_negative_expiry_has_expired() {
        let secret = b"k".repeat(32);
        let token = issue(&secret, &claims("acme", Some(-1))).unwrap();
        assert_eq!(
            verify(&token, "acme", &secret),
            Err(AuthError::Invalid("expired".into()))
        );
    }

    #[test]
    fn authorization_schemes() {
        assert_eq!(bearer_token(Some(b"Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some(b"JWT abc")), Ok("abc"));
        assert_eq!(
            bearer_token(Some(b"Basic dXNlcjpwYXNz")),
            Err(AuthError::Missing)
        );
        assert_eq!(bearer_token(None), Err(AuthError::Missing));
        assert_eq!(bearer_token(Some(b"Bearer ")), Err(AuthError::Missing));
    }
}
