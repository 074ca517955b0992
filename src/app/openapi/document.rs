//! A tenant's OpenAPI 3.1 document, built from its route entries: one operation per endpoint
//! with its path parameters, auth scheme, docstring and declared body schemas, and the
//! problem+json answers pubfn itself gives.

use serde_json::{Map, Value, json};

use super::docstring::handler_docstring;
use crate::control::model::AuthMode;
use crate::control::registry::RouteEntry;

/// The statuses pubfn answers with problem+json on its own, whatever the handler does.
const PROBLEMS: &[(&str, &str)] = &[
    (
        "400",
        "The request is malformed, or its body does not match the request schema",
    ),
    ("413", "The request body is over the tenant's limit"),
    ("429", "Too many concurrent requests for this tenant"),
    (
        "500",
        "The handler failed (the tenant's logs have the details)",
    ),
    (
        "502",
        "The handler returned something that is not a response",
    ),
    ("504", "The handler ran past its CPU or time limit"),
];

/// The document for `tenant`'s `entries`, served from `server` (the URL prefix its routes
/// hang below: `/{tenant}`, or `/` on the tenant's own host).
pub fn document(tenant: &str, server: &str, entries: &[&RouteEntry]) -> Value {
    let mut paths = Map::new();
    for entry in entries {
        let (path, params) = entry.pattern.openapi_path();
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[entry.method.to_ascii_lowercase()] = operation(entry, &params);
    }
    let version = entries.iter().map(|e| e.version).max().unwrap_or(0);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{tenant} API"),
            "version": format!("{}.{version}", entries.len()),
            "description": format!(
                "The HTTP API tenant {tenant} publishes on pubfn. Endpoints that want a token \
                 take `Authorization: Bearer <token>` (or `JWT <token>`) with a token the tenant \
                 issued."),
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": {"Problem": problem_schema()},
        },
    })
}

fn operation(entry: &RouteEntry, params: &[&str]) -> Value {
    let mut operation = json!({
        "operationId": entry.endpoint,
        "parameters": params.iter().map(|name| json!({
            "name": name, "in": "path", "required": true, "schema": {"type": "string"},
        })).collect::<Vec<_>>(),
        "responses": responses(entry),
    });
    if let Some(doc) = handler_docstring(entry.script.source()) {
        let summary = doc.lines().next().unwrap_or_default().trim().to_string();
        operation["summary"] = json!(summary);
        operation["description"] = json!(doc);
    }
    operation["security"] = match entry.auth {
        AuthMode::Jwt => json!([{"bearerJwt": []}]),
        AuthMode::Public => json!([]),
    };
    if let Some(schema) = &entry.request_schema {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema.source()}},
        });
    }
    operation
}

fn responses(entry: &RouteEntry) -> Value {
    let success = match &entry.response_schema {
        Some(schema) => json!({
            "description": "The handler's answer",
            "content": {"application/json": {"schema": schema}},
        }),
        None => json!({"description": "The handler's answer"}),
    };
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"},
            }},
        })
    };
    let mut responses = json!({ "200": success });
    for (status, description) in PROBLEMS {
        responses[*status] = problem(description);
    }
    if entry.auth == AuthMode::Jwt {
        responses["401"] = problem("No token, or not a valid token of this tenant");
        responses["403"] = problem("The token may not call this endpoint");
    }
    responses
}

/// RFC 9457 problem details as pubfn writes them.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "violations": {
                "type": "array",
                "description": "How the request body misses the endpoint's request schema",
                "items": {
                    "type": "object",
                    "properties": {
                        "pointer": {"type": "string", "description": "JSON Pointer into the body"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    })
}
