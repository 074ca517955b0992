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
use crate::http::HttpState;
use crate::http::data_plane::{self, TenantAddress};
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
    state: &HttpState,
    tenant: &str,
    body: &[u8],
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let call: TryCall = parse(body)?;
    let request = call
        .request
        .into_request(&format!("/{tenant}"), "localhost")?
        .map(|body| Full::new(Bytes::from(body)));
    let route = split_path(request.uri().path())?.split_off(1);
    let address = TenantAddress {
        tenant: tenant.to_string(),
        route,
        own_host: false,
        peer: None,
    };
    let response = data_plane::handle(state, request, address, request_id).await?;
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
