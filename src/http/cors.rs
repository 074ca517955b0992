//! Cross-origin reading of a tenant's OpenAPI document (`/{tenant}/openapi.json`), for the
//! tools that consume it from their own origin: Swagger UI, API editors, documentation sites.
//!
//! Any origin may read it, and its errors (a 401 a tool should show), because nothing ambient
//! grants access to it: the data plane uses no cookies, so a page reads the document only with
//! a token it was given (`Authorization`), exactly what it could send from anywhere else.
//! Credentials mode is never allowed. Tenants' own endpoints get no such header from pubfn:
//! a handler that wants CORS returns its own headers.

use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, HeaderMap, HeaderValue,
};
use hyper::{Response, StatusCode};

use super::respond::Body;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Lets any origin read the response (without credentials).
pub fn allow_any_origin(headers: &mut HeaderMap) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}

/// The answer to a preflight (`OPTIONS`) of the document: `GET`, with an `Authorization`
/// header, from any origin.
pub fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::from(""));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    allow_any_origin(headers);
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization"),
    );
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preflight_allows_get_with_a_token_from_anywhere_but_no_credentials() {
        let response = preflight();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_METHODS], "GET");
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_HEADERS], "authorization");
        assert!(
            !headers.contains_key(hyper::header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            "credentials are never allowed"
        );
    }
}
