//! The admin API's OpenAPI 3.1 document (`openapi.json` beside this file), served at
//! `/admin/v1/openapi.json` and used to answer 405 for a known path with the wrong method.
//! A unit test keeps it and the router in step.

use std::sync::OnceLock;

use serde_json::Value;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

fn document() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON"))
}

/// Whether `template` (`/tenants/{tenant}`) matches the path's segments.
fn matches(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.split('/').filter(|p| !p.is_empty()).collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| part.starts_with('{') || part == segment)
}

/// The methods the document lists for the path below `/admin/v1`, if it lists the path.
pub fn allowed_methods(segments: &[&str]) -> Option<Vec<String>> {
    let paths = document()["paths"].as_object()?;
    paths
        .iter()
        .find(|(template, _)| matches(template, segments))
        .map(|(_, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter(|key| *key != "parameters")
                .map(|key| key.to_ascii_uppercase())
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(METHOD, /tenants/{}/...)` for every route the router matches, read from its source.
    fn routes_in_code() -> BTreeSet<(String, String)> {
        let sources = [include_str!("../admin.rs"), include_str!("tenant_data.rs")];
        let mut routes = BTreeSet::new();
        for source in sources {
            for (_, rest) in source
                .match_indices("(&Method::")
                .map(|(i, _)| source.split_at(i))
            {
                let rest = &rest["(&Method::".len()..];
                let method = rest.split(',').next().unwrap().to_string();
                let pattern = &rest[rest.find('[').unwrap() + 1..rest.find(']').unwrap()];
                let path: String = pattern
                    .split(',')
                    .map(str::trim)
                    .map(|part| match part.strip_prefix('"') {
                        Some(literal) => format!("/{}", literal.trim_end_matches('"')),
                        None => "/{}".to_string(),
                    })
                    .collect();
                routes.insert((method, path));
            }
        }
        routes
    }

    fn routes_in_document() -> BTreeSet<(String, String)> {
        let mut routes = BTreeSet::new();
        for (template, item) in document()["paths"].as_object().unwrap() {
            let normalized: String = template
                .split('/')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    if p.starts_with('{') {
                        "/{}".to_string()
                    } else {
                        format!("/{p}")
                    }
                })
                .collect();
            for method in item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
            {
                routes.insert((method.to_ascii_uppercase(), normalized.clone()));
            }
        }
        routes
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let code = routes_in_code();
        let doc = routes_in_document();
        assert!(code.len() >= 20, "the source scan found only {code:?}");
        assert_eq!(
            code.difference(&doc).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "routes missing from openapi.json"
        );
        assert_eq!(
            doc.difference(&code).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented routes the router does not have"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_problem_errors() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for (template, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert!(op["operationId"].is_string(), "{method} {template}");
                let responses = op["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/problem+json"].is_object(),
                            "{method} {template} {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            allowed_methods(&["tenants", "acme"]),
            Some(vec!["DELETE".to_string(), "GET".to_string()])
        );
        assert_eq!(allowed_methods(&["nope"]), None);
    }
}
