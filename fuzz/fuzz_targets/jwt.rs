//! The JWT path of the data plane (src/auth/jwt.rs): an `Authorization` header's token, the
//! tenant it claims, verification against the tenant's secret, and the endpoint check.
//!
//! A forged token almost never gets past the signature, so the first byte picks what the rest
//! is: `0` an `Authorization` header value, `1` a token's payload JSON, signed here with the
//! tenant's secret under an HS256 header, `2` a header JSON, a newline and a payload JSON,
//! signed likewise. Signed inputs reach the claim checks behind the signature, which must hold
//! whenever `verify` accepts a token.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use pubfn::auth::jwt::{self, AuthError, Claims};

const TENANT: &str = "acme";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// jwt.rs's tolerance for clock skew, in seconds.
const LEEWAY: i64 = 5;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // ASCII digits select, so seeds stay readable ('0' is 48, 48 % 3 = 0).
    let token = match selector % 3 {
        0 => {
            let Ok(token) = jwt::bearer_token(Some(rest)) else {
                return;
            };
            assert!(!token.is_empty() && token.trim() == token);
            token.to_string()
        }
        1 => signed(br#"{"alg":"HS256","typ":"JWT"}"#, rest),
        _ => {
            let at = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            signed(&rest[..at], rest.get(at + 1..).unwrap_or_default())
        }
    };
    check(&token);
});

/// `header.payload.signature`, signed with the tenant's secret whatever the header says.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}

fn check(token: &str) {
    let _ = jwt::claimed_tenant(token);
    let claims = match jwt::verify(token, TENANT, SECRET) {
        Ok(claims) => claims,
        Err(error) => return assert!(matches!(error, AuthError::Invalid(_)), "{error:?}"),
    };
    // What verify promises of a token it accepts.
    assert_eq!(claims.aud, TENANT);
    assert_eq!(claims.iss, jwt::ISSUER);
    assert_eq!(jwt::claimed_tenant(token).as_deref(), Some(TENANT));
    let now = now();
    assert!(claims.nbf <= now + LEEWAY, "not valid yet: {claims:?}");
    if let Some(exp) = claims.exp {
        assert!(exp >= now - LEEWAY, "expired: {claims:?}");
    }
    // Another tenant's secret or name never verifies it.
    assert!(jwt::verify(token, "other", SECRET).is_err());
    assert!(jwt::verify(token, TENANT, b"another secret").is_err());
    endpoints(&claims);
}

fn endpoints(claims: &Claims) {
    let mut names: Vec<&str> = vec!["hello", ""];
    names.extend(claims.endpoints.iter().flatten().map(String::as_str));
    for name in names {
        let allowed = jwt::may_call(claims, name);
        match &claims.endpoints {
            None => assert_eq!(allowed, Ok(())),
            Some(list) => assert_eq!(allowed.is_ok(), list.iter().any(|e| e == name)),
        }
    }
}

fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.expect("the clock is past 1970").as_secs() as i64
}
