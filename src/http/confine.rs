//! What a tenant's response may do in a browser: nothing to another tenant's pages or to the
//! console. Tenants are hostile, and without per-tenant host names they share one origin
//! (`https://host/{tenant}/...`) with each other, and with the console unless the admin API
//! has its own listener.
//!
//! Three measures, applied to every response a handler produced:
//! - headers whose effect is origin-wide are dropped on a shared origin: a Service Worker
//!   scope beyond the tenant's path, wiping the origin's storage, HSTS, alternative services,
//!   network error and reporting endpoints, client hints;
//! - cookies are scoped to the tenant: `Path=/{tenant}` on a shared origin, and never a
//!   `Domain` (which would reach every tenant's host under the parent domain);
//! - a `Content-Security-Policy` (default `sandbox`) is added, so a document a tenant serves
//!   runs in an opaque origin: no storage, cookies or Service Workers of the real one, whatever
//!   its content type. The tenant's own CSP still applies too (every policy is enforced).

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue, LINK, SET_COOKIE};

/// Headers that change the browser's state for the whole origin, not just this response.
pub const ORIGIN_WIDE_HEADERS: &[&str] = &[
    "service-worker-allowed",
    "clear-site-data",
    "strict-transport-security",
    "alt-svc",
    "nel",
    "report-to",
    "accept-ch",
    "critical-ch",
];

/// Where a tenant's endpoints live, as the browser sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantOrigin<'a> {
    /// `https://host/{tenant}/...`: an origin shared with other tenants.
    SharedPath(&'a str),
    /// `https://{tenant}.<domain>/...`: the tenant's own origin.
    OwnHost,
}

/// Confines a handler's response headers to its tenant; returns a note for the tenant's log
/// about each header changed or dropped.
pub fn confine(
    headers: &mut HeaderMap,
    origin: TenantOrigin<'_>,
    csp: Option<&HeaderValue>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if let TenantOrigin::SharedPath(_) = origin {
        for name in ORIGIN_WIDE_HEADERS {
            if headers.remove(*name).is_some() {
                notes.push(format!(
                    "pubfn dropped the response header {name:?}: on an origin shared with other \
                     tenants it would act on their pages too"
                ));
            }
        }
        let links: Vec<HeaderValue> = headers.get_all(LINK).iter().cloned().collect();
        if links.iter().any(registers_worker) {
            headers.remove(LINK);
            for link in links.into_iter().filter(|l| !registers_worker(l)) {
                headers.append(LINK, link);
            }
            notes.push("pubfn dropped a Link header registering a Service Worker".into());
        }
    }
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if !cookies.is_empty() {
        headers.remove(SET_COOKIE);
        for cookie in cookies {
            let Ok(text) = cookie.to_str() else {
                notes.push("pubfn dropped a Set-Cookie header that is not ASCII".into());
                continue;
            };
            let scoped = scope_cookie(text, origin);
            if scoped != text {
                notes.push(format!(
                    "pubfn scoped a cookie to this tenant: {}",
                    scoped
                        .split(';')
                        .skip(1)
                        .collect::<Vec<_>>()
                        .join(";")
                        .trim()
                ));
            }
            if let Ok(value) = HeaderValue::from_str(&scoped) {
                headers.append(SET_COOKIE, value);
            }
        }
    }
    if let Some(csp) = csp {
        headers.append(
            HeaderName::from_static("content-security-policy"),
            csp.clone(),
        );
    }
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    notes
}

/// Whether a `Link` value may name a Service Worker (`rel=serviceworker`, in any spelling);
/// one that is not ASCII cannot be read, so it counts.
fn registers_worker(link: &HeaderValue) -> bool {
    link.to_str().map_or(true, |text| {
        text.to_ascii_lowercase().contains("serviceworker")
    })
}

/// A `Set-Cookie` value with its `Domain` removed and, on a shared origin, its `Path` kept
/// below the tenant's own (`/{tenant}`, which browsers match for `/{tenant}/...` only).
pub fn scope_cookie(cookie: &str, origin: TenantOrigin<'_>) -> String {
    let mut parts = cookie.split(';');
    let mut out = parts.next().unwrap_or("").trim().to_string();
    let mut path: Option<String> = None;
    for attribute in parts {
        let attribute = attribute.trim();
        let key = attribute
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match key.as_str() {
            "domain" => {}
            "path" => {
                path = Some(
                    attribute
                        .split_once('=')
                        .map_or("", |(_, v)| v)
                        .trim()
                        .to_string(),
                )
            }
            "" => {}
            _ => {
                out.push_str("; ");
                out.push_str(attribute);
            }
        }
    }
    let path = match origin {
        TenantOrigin::SharedPath(tenant) => {
            let own = format!("/{tenant}");
            match path {
                Some(p) if p == own || p.starts_with(&format!("{own}/")) => Some(p),
                _ => Some(own),
            }
        }
        TenantOrigin::OwnHost => path,
    };
    if let Some(path) = path {
        out.push_str("; Path=");
        out.push_str(&path);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_wide_headers_go_on_a_shared_origin_only() {
        let mut headers = HeaderMap::new();
        headers.insert("service-worker-allowed", HeaderValue::from_static("/"));
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=9"),
        );
        headers.insert("clear-site-data", HeaderValue::from_static("\"*\""));
        headers.insert("x-mine", HeaderValue::from_static("1"));
        let mut own = headers.clone();
        let csp = HeaderValue::from_static("sandbox");
        let notes = confine(&mut headers, TenantOrigin::SharedPath("evil"), Some(&csp));
        assert_eq!(notes.len(), 3, "{notes:?}");
        for name in [
            "service-worker-allowed",
            "strict-transport-security",
            "clear-site-data",
        ] {
            assert!(headers.get(name).is_none(), "{name}");
        }
        assert_eq!(headers["x-mine"], "1");
        assert_eq!(headers["content-security-policy"], "sandbox");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(confine(&mut own, TenantOrigin::OwnHost, None).is_empty());
        assert_eq!(own["strict-transport-security"], "max-age=9");
        assert!(own.get("content-security-policy").is_none());
    }

    #[test]
    fn a_tenants_csp_cannot_lift_the_sandbox() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src *"),
        );
        let csp = HeaderValue::from_static("sandbox");
        confine(&mut headers, TenantOrigin::SharedPath("a"), Some(&csp));
        let policies: Vec<_> = headers.get_all("content-security-policy").iter().collect();
        assert_eq!(policies, ["default-src *", "sandbox"]);
    }

    #[test]
    fn cookies_stay_with_their_tenant() {
        let shared = TenantOrigin::SharedPath("acme");
        assert_eq!(
            scope_cookie("s=1; Path=/; Domain=example.com; HttpOnly", shared),
            "s=1; HttpOnly; Path=/acme"
        );
        assert_eq!(
            scope_cookie("s=1; Path=/acme/x", shared),
            "s=1; Path=/acme/x"
        );
        assert_eq!(
            scope_cookie("s=1; path=/acmecorp", shared),
            "s=1; Path=/acme"
        );
        assert_eq!(scope_cookie("s=1", shared), "s=1; Path=/acme");
        assert_eq!(
            scope_cookie("s=1; Domain=.example.com; Secure", TenantOrigin::OwnHost),
            "s=1; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        headers.append(SET_COOKIE, HeaderValue::from_static("b=2; Path=/acme"));
        let notes = confine(&mut headers, shared, None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let cookies: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/acme", "b=2; Path=/acme"]);
    }

    #[test]
    fn link_headers_cannot_register_a_worker() {
        let mut headers = HeaderMap::new();
        headers.append(
            LINK,
            HeaderValue::from_static("</sw.js>; rel=serviceworker"),
        );
        headers.append(LINK, HeaderValue::from_static("</next>; rel=next"));
        confine(&mut headers, TenantOrigin::SharedPath("a"), None);
        let links: Vec<_> = headers.get_all(LINK).iter().collect();
        assert_eq!(links, ["</next>; rel=next"]);
    }
}
