//! A sample request, as the console's "Run" and "Try" send it, made into a real HTTP request
//! (and checked as one).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::http::respond::Problem;

/// A sample request; every field has a default (`GET /`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SampleRequest {
    method: Option<String>,
    path: Option<String>,
    query: Option<String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

impl SampleRequest {
    /// The request, its path below `prefix`; `host` is its Host unless it sets its own.
    pub fn into_request(
        self,
        prefix: &str,
        host: &str,
    ) -> Result<hyper::http::Request<Vec<u8>>, Problem> {
        let method = self
            .method
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Problem::BadRequest(format!("request.method {method:?}")));
        }
        let path = self.path.unwrap_or_else(|| "/".into());
        if !path.starts_with('/') || path.chars().any(char::is_control) {
            return Err(Problem::BadRequest(
                "request.path must start with '/'".into(),
            ));
        }
        let query = self.query.unwrap_or_default();
        let uri = match query.as_str() {
            "" => format!("{prefix}{path}"),
            query => format!("{prefix}{path}?{query}"),
        };
        let mut builder = hyper::http::Request::builder()
            .method(method.as_str())
            .uri(uri);
        if !self
            .headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("host"))
        {
            builder = builder.header(hyper::header::HOST, host);
        }
        for (name, value) in &self.headers {
            let valid = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && hyper::header::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(Problem::BadRequest(format!(
                    "request.headers: {name:?} is not a valid header"
                )));
            }
            builder = builder.header(name, value);
        }
        builder
            .body(self.body.unwrap_or_default().into_bytes())
            .map_err(|e| Problem::BadRequest(format!("request: {e}")))
    }
}
