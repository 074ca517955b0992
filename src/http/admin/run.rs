//! `POST /admin/v1/tenants/{t}/run`: runs a draft script on a sample request in the tenant's
//! sandbox, without deploying it (the console's "Run", as Peliqan has it). It reaches the
//! tenant's databases and secrets like a deployed handler, but has no endpoint state.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::parse;
use super::sample::SampleRequest;
use crate::host::GuestRequest;
use crate::http::AppState;
use crate::http::respond::{Body, Problem};
use crate::http::router::json_response;
use crate::sandbox::{Call, CallErrorKind, Isolation, Limits, Script};

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
    let sample = draft.request.check()?;
    let request = GuestRequest {
        url: format!(
            "http://draft/{tenant}{}{}",
            sample.path,
            sample.query_suffix()
        ),
        method: sample.method,
        path: sample.path,
        query_string: sample.query,
        headers: sample
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect(),
        path_params: BTreeMap::new(),
        body: sample.body,
    };
    // A draft is a call of the tenant like any other: within its caps, under its concurrency
    // cap and in its fair share of the cores.
    let limits = view.limits.cap(draft.limits);
    let caps = state.caps_for(&view.limits);
    let semaphore = state.tenant_semaphore(&view.name, caps.max_concurrency);
    let Ok(_permit) = semaphore.try_acquire() else {
        return Err(Problem::TooManyRequests);
    };
    let (database, capabilities) = state.capabilities(&view, None);
    let call = Call {
        tenant: view.name.clone(),
        endpoint: "_draft".into(),
        version: "draft".into(),
        script: Script::new(draft.script),
        isolation: Isolation::Strict,
        limits,
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
                "limits": limits,
            })
        }
        Err(error) => {
            let (traceback, line, column) = match &error.kind {
                CallErrorKind::Exception(report) | CallErrorKind::Syntax(report) => {
                    (report.traceback.clone(), report.line, report.column)
                }
                _ => (None, None, None),
            };
            let kind = match &error.kind {
                CallErrorKind::Syntax(_) => "syntax",
                _ => "failed",
            };
            json!({
                "status": null,
                "output": error.output,
                "error": {"kind": kind, "message": error.kind.to_string(), "traceback": traceback,
                          "line": line, "column": column},
                "duration_ms": duration_ms,
                "limits": limits,
            })
        }
    };
    Ok(json_response(StatusCode::OK, &result))
}
