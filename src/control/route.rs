//! Endpoint routes: `/accounts/{id}`-style patterns below the tenant's path segment.

use std::collections::BTreeMap;

use super::ControlError;

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// The path below a tenant where the server serves the tenant's OpenAPI document.
pub const OPENAPI_DOCUMENT: &str = "openapi.json";

/// Most segments a route may have.
const MAX_SEGMENTS: usize = 16;

impl RoutePattern {
    /// Parses `route`: starts with `/`, segments of URL-safe characters or `{name}`.
    pub fn parse(route: &str) -> Result<Self, ControlError> {
        let invalid = |why: &str| ControlError::Invalid(format!("route {route:?}: {why}"));
        let rest = route
            .strip_prefix('/')
            .ok_or_else(|| invalid("must start with '/'"))?;
        let mut segments = Vec::new();
        let mut names = std::collections::HashSet::new();
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().rev().skip(1).any(|p| p.is_empty()) {
            return Err(invalid("empty segment ('//')"));
        }
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid("parameter names are letters, digits and '_'"));
                }
                if !names.insert(name.to_string()) {
                    return Err(invalid("a parameter name is repeated"));
                }
                segments.push(Segment::Param(name.to_string()));
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            {
                segments.push(Segment::Literal(part.to_string()));
            } else {
                return Err(invalid(
                    "segments are letters, digits, '-', '.', '_', '~' or {param}",
                ));
            }
        }
        if matches!(segments.first(), Some(Segment::Literal(first)) if first == "_whoami") {
            return Err(invalid("/_whoami is the server's own"));
        }
        if matches!(segments.as_slice(), [Segment::Literal(only)] if only == OPENAPI_DOCUMENT) {
            return Err(invalid(
                "/openapi.json is the server's own (the tenant's API document)",
            ));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(invalid("too many segments"));
        }
        Ok(RoutePattern { segments })
    }

    /// The route as OpenAPI writes a path: `/accounts/{id}`, its parameters in order.
    pub fn openapi_path(&self) -> (String, Vec<&str>) {
        let mut path = String::new();
        let mut params = Vec::new();
        for segment in &self.segments {
            path.push('/');
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Param(name) => {
                    path.push('{');
                    path.push_str(name);
                    path.push('}');
                    params.push(name.as_str());
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        (path, params)
    }

    /// The parameters if `path_segments` (already percent-decoded) match.
    pub fn matches(&self, path_segments: &[String]) -> Option<BTreeMap<String, String>> {
        if path_segments.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (pattern, actual) in self.segments.iter().zip(path_segments) {
            match pattern {
                Segment::Literal(literal) if literal == actual => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), actual.clone());
                }
            }
        }
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn params_are_captured() {
        let route = RoutePattern::parse("/accounts/{id}/orders").unwrap();
        let params = route.matches(&segs("/accounts/42/orders")).unwrap();
        assert_eq!(params["id"], "42");
        assert!(route.matches(&segs("/accounts/42")).is_none());
        assert!(route.matches(&segs("/users/42/orders")).is_none());
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in ["accounts", "/a b", "/{}", "/{a}/{a}", "/a/{x-y}", "/%2e%2e"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document_path_is_the_servers_and_routes_read_as_openapi_paths() {
        assert!(RoutePattern::parse("/openapi.json").is_err());
        assert!(RoutePattern::parse("/v1/openapi.json").is_ok());
        let route = RoutePattern::parse("/accounts/{id}/orders/{n}").unwrap();
        assert_eq!(
            route.openapi_path(),
            ("/accounts/{id}/orders/{n}".to_string(), vec!["id", "n"])
        );
        assert_eq!(RoutePattern::parse("/").unwrap().openapi_path().0, "/");
    }
}
