//! A client's HTTP request turned into the request a handler sees: the input is an HTTP/1.1
//! request as it arrives on the wire (head, blank line, body).
//!
//! The head is parsed with httparse and turned into `http` types the way hyper does, so only
//! requests hyper would accept go further. Then, as the data plane does: the path is split and
//! percent-decoded (http/router.rs), matched against a few route patterns (control/route.rs),
//! converted (app/invoke.rs `guest_request`) and encoded for the guest (host/request.rs). The
//! guest must get back exactly what the client sent.

#![no_main]

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue, Method, Request, Uri};
use libfuzzer_sys::fuzz_target;
use pubfn::control::route::RoutePattern;
use pubfn::host::{GuestRequest, request};

/// Routes a tenant might deploy.
const ROUTES: &[&str] = &[
    "/hello",
    "/accounts/{id}",
    "/accounts/{id}/orders/{order}",
    "/{a}/{b}/{c}",
];

fuzz_target!(|data: &[u8]| {
    let Some((parts, body)) = parse(data) else {
        return;
    };
    // Only the Authorization header's scheme is read before the handler runs.
    let header = parts.headers.get(http::header::AUTHORIZATION);
    let _ = pubfn::auth::jwt::bearer_token(header.map(HeaderValue::as_bytes));
    let Ok(segments) = pubfn::http::router::split_path(parts.uri.path()) else {
        return;
    };
    // The first segment names the tenant; a request for no tenant never reaches a handler.
    let Some(route_segments) = segments.get(1..) else {
        return;
    };
    let params = ROUTES
        .iter()
        .map(|route| RoutePattern::parse(route).expect("the routes above are valid"))
        .find_map(|pattern| pattern.matches(route_segments))
        .unwrap_or_default();
    let guest = pubfn::app::invoke::guest_request(&parts, body.to_vec(), route_segments, params);
    check(&parts, body, route_segments, &guest);
});

/// The request hyper would hand the server, and its body; `None` where hyper would refuse it.
fn parse(data: &[u8]) -> Option<(http::request::Parts, &[u8])> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = head.parse(data).ok()? else {
        return None;
    };
    let mut request = Request::builder()
        .method(Method::from_bytes(head.method?.as_bytes()).ok()?)
        .uri(Uri::try_from(head.path?).ok()?)
        .body(())
        .ok()?;
    for header in head.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        request.headers_mut().append(name, value);
    }
    Some((request.into_parts().0, &data[length..]))
}

/// What the guest reads (`PQ_OP_REQUEST_HEAD` and `_BODY`) is what the client sent.
fn check(parts: &http::request::Parts, body: &[u8], route: &[String], guest: &GuestRequest) {
    let head = request::head(Some(guest)).expect("a request head encodes");
    let head: serde_json::Value = serde_json::from_slice(&head).expect("the head is JSON");
    assert_eq!(head["method"], parts.method.as_str());
    assert_eq!(head["query_string"], parts.uri.query().unwrap_or(""));
    let url = head["url"].as_str().expect("the url is a string");
    assert!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{url}"
    );
    let path = head["path"].as_str().expect("the path is a string");
    assert_eq!(path, format!("/{}", route.join("/")));
    let headers = head["headers"].as_array().expect("headers are a list");
    assert_eq!(headers.len(), parts.headers.len());
    for (sent, (name, value)) in headers.iter().zip(parts.headers.iter()) {
        assert_eq!(sent[0], name.as_str());
        // Latin-1: one char per byte, so the guest can recover the bytes exactly.
        let latin1: Vec<u8> = sent[1]
            .as_str()
            .expect("a header value is a string")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 chars are below 256"))
            .collect();
        assert_eq!(latin1, value.as_bytes());
    }
    let params: BTreeMap<String, String> =
        serde_json::from_value(head["path_params"].clone()).expect("path params are a dict");
    assert_eq!(params, guest.path_params);
    assert_eq!(request::body(Some(guest)).expect("a body"), body);
}
