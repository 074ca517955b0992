//! The web console at `/console/`: static assets built into the binary (plain HTML, CSS and
//! ES modules, so no Node.js is needed to build or run them). It signs in with a tenant admin
//! token and works entirely through the admin API.

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};

use super::respond::{Body, Problem};

/// The console's files: (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("console/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("console/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    ),
    (
        "highlight.js",
        "text/javascript; charset=utf-8",
        include_str!("console/highlight.js"),
    ),
];

/// Serves `/console` and everything below it; `rest` is the path after `/console`.
pub fn serve(rest: &str) -> Result<Response<Body>, Problem> {
    if rest.is_empty() {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/console/"));
        return Ok(response);
    }
    let name = match rest.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    let (_, content_type, text) = ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .ok_or_else(|| Problem::NotFound(format!("no console file {name:?}")))?;
    let mut response = Response::new(Body::from(*text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The console holds an admin token: no foreign scripts, no framing, no sniffing.
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}
