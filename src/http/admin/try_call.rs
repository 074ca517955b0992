//! `POST /admin/v1/tenants/{t}/try`: calls one of the tenant's deployed endpoints with a
//! sample request, through the data plane itself (token check, routing, caps, sandbox, logs),
//! and answers with what a client would have received. The console's request builder uses it,
//! so the console never loads a tenant's response from the tenant's origin, and the console's
//! origin never serves one.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::parse;
use super::sample::SampleRequest;
use crate::http::AppState;
use crate::http::data::{self, TenantAddress};
use crate::http::respond::{Body, Problem};
use crate::http::router::{json_response, split_path};

/// What to send.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TryCall {
    #[serde(default, deserialize_with = "crate::control::model::object")]
    request: SampleRequest,
}

/// Sends the sample request to the tenant's endpoint and answers 200 with its response.
pub(super) async fn try_call(
    state: &AppState,
    tenant: &str,
    body: &[u8],
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let call: TryCall = parse(body)?;
    let sample = call.request.check()?;
    let route = split_path(&sample.path)?;
    let uri = format!("/{tenant}{}{}", sample.path, sample.query_suffix());
    let mut builder = hyper::Request::builder()
        .method(sample.method.as_str())
        .uri(&uri);
    for (name, value) in &sample.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(sample.body)))
        .map_err(|e| Problem::BadRequest(format!("request: {e}")))?;
    let address = TenantAddress {
        tenant: tenant.to_string(),
        route,
        own_host: false,
    };
    let response = data::handle(state, request, address, request_id).await?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| Problem::Internal(format!("reading a response: {e}")))?
        .to_bytes();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let text = std::str::from_utf8(&body).ok();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "status": parts.status.as_u16(),
            "headers": headers,
            "body": text,
            "body_base64": text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&body)),
        }),
    ))
}
