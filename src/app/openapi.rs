//! What a tenant's clients can learn of its endpoints before calling them: the OpenAPI 3.1
//! document (`GET /{tenant}/openapi.json`), and the request schema an endpoint declares,
//! applied before its handler runs.

mod docstring;
mod document;

use serde_json::Value;

use super::{App, AppError};
use crate::auth::jwt;
use crate::control::model::AuthMode;
use crate::control::registry::{RouteEntry, TenantView};
use crate::control::schema::{BodySchema, Violation};

impl App {
    /// `tenant`'s OpenAPI document, served from `server` (its routes' URL prefix). Public when
    /// every endpoint is; otherwise the caller needs a valid token of the tenant, and sees the
    /// public endpoints and those its token may call (a token limited to some endpoints does
    /// not learn of the others).
    pub async fn openapi(
        &self,
        tenant: &TenantView,
        authorization: Option<&[u8]>,
        server: &str,
    ) -> Result<Value, AppError> {
        let everything_public = tenant.routes.iter().all(|e| e.auth == AuthMode::Public);
        let entries: Vec<&RouteEntry> = if everything_public {
            tenant.routes.iter().collect()
        } else {
            let claims = self
                .verify_data_token(tenant, jwt::bearer_token(authorization)?)
                .await?;
            tenant
                .routes
                .iter()
                .filter(|e| {
                    e.auth == AuthMode::Public || jwt::may_call(&claims, &e.endpoint).is_ok()
                })
                .collect()
        };
        Ok(document::document(&tenant.name, server, &entries))
    }
}

/// Checks a request body against its endpoint's request schema, before the handler runs: the
/// body must be JSON (a `Content-Type`, if given, a JSON one) and match the schema.
pub fn check_request_body(
    schema: &BodySchema,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), AppError> {
    if let Some(content_type) = content_type {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" && !media.ends_with("+json") {
            return Err(AppError::UnsupportedMediaType(format!(
                "this endpoint takes application/json matching its request schema, not {media:?}"
            )));
        }
    }
    let whole = |message: String| {
        AppError::BodyViolations(vec![Violation {
            pointer: String::new(),
            message,
        }])
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(whole(
            "the body is empty; this endpoint takes JSON matching its request schema".into(),
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| whole(format!("the body is not JSON: {e}")))?;
    let violations = schema.violations(&value);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AppError::BodyViolations(violations))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn violations(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Violation>, String> {
        let schema = BodySchema::compile(
            "request_schema",
            &json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}),
        )
        .unwrap();
        match check_request_body(&schema, content_type, body) {
            Ok(()) => Ok(Vec::new()),
            Err(AppError::BodyViolations(found)) => Ok(found),
            Err(other) => Err(other.to_string()),
        }
    }

    #[test]
    fn a_matching_json_body_passes() {
        assert_eq!(
            violations(Some("application/json"), br#"{"n": 1}"#),
            Ok(vec![])
        );
        assert_eq!(violations(None, br#"{"n": 1}"#), Ok(vec![]));
        let vendor = Some("application/vnd.api+json; charset=utf-8");
        assert_eq!(violations(vendor, br#"{"n": 1}"#), Ok(vec![]));
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        let found = violations(Some("application/json"), br#"{"n": "one"}"#).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/n");
        let empty = violations(None, b"  ").unwrap();
        assert!(empty[0].message.contains("empty"), "{empty:?}");
        let broken = violations(None, b"{\"n\": ").unwrap();
        assert!(broken[0].message.contains("not JSON"), "{broken:?}");
        let form = violations(Some("application/x-www-form-urlencoded"), b"n=1").unwrap_err();
        assert!(form.contains("application/json"), "{form}");
    }
}
