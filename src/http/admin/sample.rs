//! A sample request, as the console's "Run" and "Try" send it: checked like a real one.

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

/// A sample request, checked.
pub(super) struct Sample {
    /// Upper-case method.
    pub method: String,
    /// The path below the tenant, starting with `/`.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// Lower-case names and their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Sample {
    /// `?query`, or nothing.
    pub fn query_suffix(&self) -> String {
        if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        }
    }
}

impl SampleRequest {
    /// Checks every field as a real request's would be.
    pub fn check(self) -> Result<Sample, Problem> {
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
        let mut headers = Vec::new();
        for (name, value) in self.headers {
            let valid = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && hyper::header::HeaderValue::from_str(&value).is_ok();
            if !valid {
                return Err(Problem::BadRequest(format!(
                    "request.headers: {name:?} is not a valid header"
                )));
            }
            headers.push((name.to_ascii_lowercase(), value));
        }
        Ok(Sample {
            method,
            path,
            query,
            headers,
            body: self.body.unwrap_or_default().into_bytes(),
        })
    }
}
