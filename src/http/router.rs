//! Routing: `/healthz` and `/readyz`; on the admin surface `/admin/v1/...`, `/console/` and
//! `/metrics`; on the data surface `/{tenant}/{route...}`, or `{tenant}.<domain>/{route...}`
//! when the operator gives each tenant a host name of its own.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::data_plane::TenantAddress;
use super::respond::{Body, Problem};
use super::server::Surface;
use super::{HttpState, admin, data_plane};

/// Dispatches a request to the part of the server that owns its path.
pub async fn route(
    state: &HttpState,
    surface: Surface,
    peer: std::net::SocketAddr,
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
    if path == "/readyz" {
        return readyz(state).await;
    }
    let segments = split_path(&path)?;
    if let Some(domain) = &state.tenant_domain
        && let Some(tenant) = host_tenant(&request, domain)
    {
        // A tenant's own origin serves its endpoints and nothing else.
        if !surface.serves_data() {
            return Err(crate::app::AppError::NoSuchEndpoint.into());
        }
        let address = TenantAddress {
            tenant,
            route: segments,
            own_host: true,
            peer: Some(peer.ip()),
        };
        return data_plane::handle(state, request, address, request_id).await;
    }
    if surface.serves_admin() {
        if path == "/metrics" {
            return metrics(state, &request);
        }
        if let Some(rest) = path.strip_prefix("/console")
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return super::console::serve(rest);
        }
        match segments.first().map(String::as_str) {
            Some("admin") if segments.get(1).map(String::as_str) == Some("v1") => {
                return admin::handle(state, request, &segments[2..], request_id).await;
            }
            Some("admin") => {
                return Err(Problem::NotFound(
                    "the admin API lives under /admin/v1".into(),
                ));
            }
            _ => {}
        }
    }
    if !surface.serves_data() {
        return Err(Problem::NotFound(
            "nothing here: this listener serves /admin/v1, /console/ and /metrics".into(),
        ));
    }
    if let Some(domain) = &state.tenant_domain {
        return Err(Problem::NotFound(format!(
            "tenants' endpoints are served at https://{{tenant}}.{domain}/{{route}}"
        )));
    }
    let mut segments = segments.into_iter();
    match segments.next() {
        Some(tenant) => {
            let address = TenantAddress {
                tenant,
                route: segments.collect(),
                own_host: false,
                peer: Some(peer.ip()),
            };
            data_plane::handle(state, request, address, request_id).await
        }
        None => Err(Problem::NotFound(
            "nothing here: call /{tenant}/{route}".into(),
        )),
    }
}

/// The tenant a request's host names (`{tenant}.<domain>`, any port), if it names one.
fn host_tenant<B>(request: &Request<B>, domain: &str) -> Option<String> {
    // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in the Host header.
    let host = match request.uri().host() {
        Some(host) => host.to_string(),
        None => request
            .headers()
            .get(hyper::header::HOST)?
            .to_str()
            .ok()?
            .to_string(),
    };
    let host = host.to_ascii_lowercase();
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host.as_str(), |(name, _)| name);
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

/// 200 when the node should be sent requests; else 503 naming the parts that fail. The
/// reasons (which may name paths and hosts) go to the log, not to whoever asked.
async fn readyz(state: &HttpState) -> Result<Response<Body>, Problem> {
    let readiness = state.app.readiness().await;
    if readiness.is_ready() {
        return Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ready"}),
        ));
    }
    let parts = [
        ("serving", &readiness.serving),
        ("database", &readiness.database),
        ("runtime", &readiness.runtime),
    ];
    let mut failing = Vec::new();
    for (name, part) in parts {
        if let Err(why) = part {
            tracing::warn!(part = name, "not ready: {why}");
            failing.push(name);
        }
    }
    Err(Problem::Unavailable(format!(
        "not ready: {}",
        failing.join(", ")
    )))
}

/// `GET /metrics`, for the metrics token (or the admin key): tenant names are in it.
fn metrics(state: &HttpState, request: &Request<Incoming>) -> Result<Response<Body>, Problem> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|h| h.as_bytes());
    let token = crate::auth::jwt::bearer_token(header)?;
    let expected = state
        .metrics_token
        .as_deref()
        .unwrap_or(state.app.admin_key());
    if !crate::app::tokens::secrets_equal(token.as_bytes(), expected.as_bytes()) {
        return Err(crate::auth::AuthError::Invalid("not the metrics token".into()).into());
    }
    let text = state.metrics.render(&state.app);
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(response)
}

/// The path's segments, percent-decoded (see [`crate::app::invoke::route_segments`]).
pub fn split_path(path: &str) -> Result<Vec<String>, Problem> {
    Ok(crate::app::invoke::route_segments(path)?)
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
    fn a_tenant_host_names_its_tenant() {
        let request = |host: &str| {
            Request::builder()
                .uri("/x")
                .header("host", host)
                .body(())
                .unwrap()
        };
        let tenant = |host: &str| host_tenant(&request(host), "fn.example.com");
        assert_eq!(tenant("acme.fn.example.com").as_deref(), Some("acme"));
        assert_eq!(tenant("ACME.fn.example.com:8443").as_deref(), Some("acme"));
        assert_eq!(tenant("fn.example.com"), None);
        assert_eq!(tenant("a.b.fn.example.com"), None);
        assert_eq!(tenant("acmefn.example.com"), None);
        assert_eq!(tenant("acme.fn.example.com.evil"), None);
        let h2 = Request::builder()
            .uri("https://acme.fn.example.com/x")
            .body(())
            .unwrap();
        assert_eq!(host_tenant(&h2, "fn.example.com").as_deref(), Some("acme"));
    }

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
