//! The request a handler sees, built from the HTTP request the same way for every way into a
//! handler.

use std::collections::BTreeMap;

use crate::app::AppError;
use crate::host::GuestRequest;

/// The request a handler sees: method, full URL, the path below the tenant, the raw query,
/// the headers (in arrival order), the route's parameters and the body. Every way into a
/// handler (the data plane, a draft, `pubfn run`) builds its request here. Public for the
/// fuzz targets (fuzz/), which feed it arbitrary requests.
pub fn guest_request(
    parts: &hyper::http::request::Parts,
    body: Vec<u8>,
    route_segments: &[String],
    path_params: BTreeMap<String, String>,
) -> GuestRequest {
    // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in the Host header.
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = match parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    GuestRequest {
        method: parts.method.as_str().to_string(),
        url: format!("{scheme}://{host}{path_and_query}"),
        path: format!("/{}", route_segments.join("/")),
        query_string: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        path_params,
        body,
        warehouse: None,
        remote_addr: String::new(),
    }
}

/// A path's segments, percent-decoded; empty segments are dropped. A `%` must start two hex
/// digits, and the decoded bytes must be UTF-8.
pub fn route_segments(path: &str) -> Result<Vec<String>, AppError> {
    let malformed = || AppError::Invalid("malformed percent-encoding in path".into());
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let escapes_ok = segment.match_indices('%').all(|(at, _)| {
                segment
                    .as_bytes()
                    .get(at + 1..at + 3)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            });
            if !escapes_ok {
                return Err(malformed());
            }
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| malformed())
        })
        .collect()
}
