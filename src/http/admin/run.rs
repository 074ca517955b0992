//! `POST /admin/v1/tenants/{t}/run`: runs a draft script on a sample request in the tenant's
//! sandbox, without deploying it (the console's "Run", as Peliqan has it). It reaches the
//! tenant's databases and secrets like a deployed handler, but has no endpoint state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::parse;
use crate::host::GuestRequest;
use crate::http::AppState;
use crate::http::respond::{Body, Problem};
use crate::http::router::json_response;
use crate::sandbox::{Call, CallErrorKind, Isolation, Limits};

/// The draft and the request to run it on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftRun {
    script: String,
    #[serde(default, deserialize_with = "crate::control::model::object")]
    request: SampleRequest,
    #[serde(default, deserialize_with = "crate::control::model::object")]
    limits: Limits,
}

/// A sample request; every field has a default (`GET /`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SampleRequest {
    method: Option<String>,
    path: Option<String>,
    query: Option<String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

/// Runs the draft and answers 200 with what the handler did, failures included.
pub(super) async fn run(
    state: &AppState,
    tenant: &str,
    body: &[u8],
) -> Result<Response<Body>, Problem> {
    let draft: DraftRun = parse(body)?;
    draft
        .limits
        .validate(state.sandbox.max_memory_bytes())
        .map_err(Problem::BadRequest)?;
    let view = state
        .registry
        .tenant(tenant)
        .await?
        .ok_or_else(|| Problem::NotFound(format!("no tenant {tenant:?}")))?;
    let sample = draft.request;
    let method = sample
        .method
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Problem::BadRequest(format!("request.method {method:?}")));
    }
    let path = sample.path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.chars().any(char::is_control) {
        return Err(Problem::BadRequest(
            "request.path must start with '/'".into(),
        ));
    }
    let query = sample.query.unwrap_or_default();
    let mut headers = Vec::new();
    for (name, value) in sample.headers {
        let valid = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && hyper::header::HeaderValue::from_str(&value).is_ok();
        if !valid {
            return Err(Problem::BadRequest(format!(
                "request.headers: {name:?} is not a valid header"
            )));
        }
        headers.push((name.to_ascii_lowercase(), value.into_bytes()));
    }
    let query_suffix = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let request = GuestRequest {
        method,
        url: format!("http://draft/{tenant}{path}{query_suffix}"),
        path,
        query_string: query,
        headers,
        path_params: BTreeMap::new(),
        body: sample.body.unwrap_or_default().into_bytes(),
    };
    let (database, capabilities) = state.capabilities(&view, None);
    let call = Call {
        tenant: view.name.clone(),
        endpoint: "_draft".into(),
        version: "draft".into(),
        script: Arc::from(draft.script.as_str()),
        isolation: Isolation::Strict,
        limits: draft.limits,
        request,
        capabilities,
    };
    let started = Instant::now();
    let outcome = state.sandbox.handle(call).await;
    database.finish().await;
    let duration_ms = started.elapsed().as_secs_f64() * 1e3;
    let result = match outcome {
        Ok(reply) => {
            let response = reply.response;
            let text = String::from_utf8(response.body.clone()).ok();
            json!({
                "status": response.status,
                "headers": response.headers,
                "body": text,
                "body_base64": text.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(&response.body)),
                "output": reply.output,
                "error": null,
                "duration_ms": duration_ms,
            })
        }
        Err(error) => {
            let (traceback, line, column) = match &error.kind {
                CallErrorKind::Exception(report) | CallErrorKind::Syntax(report) => {
                    (report.traceback.clone(), report.line, report.column)
                }
                _ => (None, None, None),
            };
            json!({
                "status": null,
                "output": error.output,
                "error": {"message": error.kind.to_string(), "traceback": traceback,
                          "line": line, "column": column},
                "duration_ms": duration_ms,
            })
        }
    };
    Ok(json_response(StatusCode::OK, &result))
}
