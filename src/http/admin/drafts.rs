//! `POST /admin/v1/tenants/{t}/run`: the draft and its sample request parsed, run by
//! `app::drafts`, and what the handler did answered as JSON with a 200, failures included.

use base64::Engine;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::parse;
use super::sample::SampleRequest;
use crate::app::{App, Caller};
use crate::http::respond::{Body, Problem};
use crate::http::router::json_response;
use crate::sandbox::{CallErrorKind, Limits};

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
    app: &App,
    caller: &Caller,
    tenant: &str,
    body: &[u8],
) -> Result<Response<Body>, Problem> {
    let draft: DraftRun = parse(body)?;
    // Without a Host of its own, the handler sees `http://draft/...`.
    let request = draft.request.into_request("", "draft")?;
    let done = app
        .run_draft(caller, tenant, draft.script, draft.limits, request)
        .await?;
    let duration_ms = done.duration.as_secs_f64() * 1e3;
    let result = match done.outcome {
        Ok(reply) => {
            let response = reply.response;
            let text = String::from_utf8(response.body.clone()).ok();
            let base64 = text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&response.body));
            json!({
                "status": response.status,
                "headers": response.headers,
                "body": text,
                "body_base64": base64,
                "output": reply.output,
                "error": null,
                "duration_ms": duration_ms,
                "limits": done.limits,
            })
        }
        Err(error) => {
            let (line, column) = match &error.kind {
                CallErrorKind::Exception(report) | CallErrorKind::Syntax(report) => {
                    (report.line, report.column)
                }
                _ => (None, None),
            };
            let kind = match &error.kind {
                CallErrorKind::Syntax(_) => "syntax",
                _ => "failed",
            };
            json!({
                "status": null,
                "output": error.output,
                "error": {"kind": kind, "message": error.kind.to_string(),
                          "traceback": error.kind.traceback(), "line": line, "column": column},
                "duration_ms": duration_ms,
                "limits": done.limits,
            })
        }
    };
    Ok(json_response(StatusCode::OK, &result))
}
