//! Routing: `/healthz`, `/admin/v1/...` and `/{tenant}/{route...}`.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::respond::{Body, Problem};
use super::{AppState, admin, data};

/// Dispatches a request to the part of the server that owns its path.
pub async fn route(
    state: &AppState,
    request: Request<Incoming>,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let path = request.uri().path().to_string();
    if path == "/healthz" {
        return Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        ));
    }
    if path == "/metrics" {
        return metrics(state, &request);
    }
    if let Some(rest) = path.strip_prefix("/console")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return super::console::serve(rest);
    }
    let segments = split_path(&path)?;
    match segments.first().map(String::as_str) {
        Some("admin") if segments.get(1).map(String::as_str) == Some("v1") => {
            admin::handle(state, request, &segments[2..]).await
        }
        Some("admin") => Err(Problem::NotFound(
            "the admin API lives under /admin/v1".into(),
        )),
        Some(_) => data::handle(state, request, segments, request_id).await,
        None => Err(Problem::NotFound(
            "nothing here: call /{tenant}/{route}".into(),
        )),
    }
}

/// `GET /metrics`, for the metrics token (or the admin key): tenant names are in it.
fn metrics(state: &AppState, request: &Request<Incoming>) -> Result<Response<Body>, Problem> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|h| h.as_bytes());
    let token = crate::auth::jwt::bearer_token(header)?;
    let expected = state.metrics_token.as_deref().unwrap_or(&state.admin_key);
    if !super::admin::constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(crate::auth::AuthError::Invalid("not the metrics token".into()).into());
    }
    let text = state.metrics.render(&state.sandbox, &state.pools);
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(response)
}

/// The path's segments, percent-decoded; empty segments are dropped.
pub fn split_path(path: &str) -> Result<Vec<String>, Problem> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_decode(segment)
                .ok_or_else(|| Problem::BadRequest("malformed percent-encoding in path".into()))
        })
        .collect()
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone would also take "+1".
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_decoded() {
        assert_eq!(split_path("/acme//a%20b/").unwrap(), vec!["acme", "a b"]);
        assert!(split_path("/acme/%zz").is_err());
        assert!(split_path("/acme/%ff").is_err());
        assert!(
            split_path("/acme/%+1").is_err(),
            "a sign is not a hex digit"
        );
        assert!(split_path("/acme/%4").is_err());
    }
}
