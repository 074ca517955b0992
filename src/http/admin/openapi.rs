//! The admin API's OpenAPI 3.1 document (`openapi.json` beside this file), served at
//! `/admin/v1/openapi.json`. A unit test keeps it and the route table (`routes.rs`) in step.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    /// `(METHOD, /tenants/{}/...)` for every route of the route table.
    fn routes_in_code() -> BTreeSet<(String, String)> {
        super::super::routes::ROUTES
            .iter()
            .filter(|route| route.path != "/openapi.json")
            .map(|route| (route.method.to_string(), normalize(route.path)))
            .collect()
    }

    /// A path template with every parameter written `{}`.
    fn normalize(template: &str) -> String {
        template
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| {
                if p.starts_with('{') {
                    "/{}".to_string()
                } else {
                    format!("/{p}")
                }
            })
            .collect()
    }

    fn routes_in_document() -> BTreeSet<(String, String)> {
        let mut routes = BTreeSet::new();
        for (template, item) in document()["paths"].as_object().unwrap() {
            let normalized = normalize(template);
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
    }
}
