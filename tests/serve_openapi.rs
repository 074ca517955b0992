//! A tenant's OpenAPI document (`GET /{tenant}/openapi.json`) and its endpoints' request
//! schemas, through the real server: the document passes openapi-spec-validator's OpenAPI 3.1
//! check (from PyPI, in tests/openapi/.venv), and a body that misses a declared schema never
//! reaches the handler.

#[path = "common/server.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Server, admin, deploy, fresh_database, request, token};
use serde_json::{Value, json};

const ORDERS: &str = r#"
import pq

def handler(request):
    """Place an order.

    Stores nothing: echoes what it was given.
    """
    print('handler ran')
    return {"placed": request["json"]["item"], "id": request["path_params"]["shop"]}
"#;

/// Runs openapi-spec-validator on `document`: its stdout and stderr, and whether it passed.
fn validate(document: &Value, name: &str) -> (bool, String) {
    let validator = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/openapi/.venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/setup (it installs tests/openapi/requirements.txt)",
        validator.display()
    );
    let file =
        std::env::temp_dir().join(format!("pubfn-openapi-{}-{name}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    let output = Command::new(&validator)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("running openapi-spec-validator");
    let _ = std::fs::remove_file(&file);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn handler_logs(server: &Server, tenant: &str, endpoint: &str) -> Vec<Value> {
    let path = format!("/tenants/{tenant}/endpoints/{endpoint}/logs");
    let reply = admin(server, "GET", &path, json!(null)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json().as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_publishes_a_valid_document_and_its_schemas_guard_the_handlers() {
    let db = fresh_database("openapi").await;
    let server = Server::start(Some(&db), &[]);
    let created = admin(&server, "POST", "/tenants", json!({"name": "shop"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let order_schema = json!({
        "type": "object", "required": ["item", "qty"], "additionalProperties": false,
        "properties": {"item": {"type": "string", "minLength": 1},
                       "qty": {"type": "integer", "minimum": 1}}});
    deploy(
        &server,
        "shop",
        "place_order",
        json!({
        "method": "POST", "route": "/shops/{shop}/orders", "script": ORDERS,
        "request_schema": order_schema,
        "response_schema": {"type": "object", "properties": {"placed": {"type": "string"}}}}),
    )
    .await;
    deploy(
        &server,
        "shop",
        "hello",
        json!({
        "method": "GET", "route": "/hello", "auth": "public",
        "script": "def handler():\n    '''Says hello.'''\n    return 'hello'\n"}),
    )
    .await;
    deploy(
        &server,
        "shop",
        "undocumented",
        json!({
        "method": "GET", "route": "/undocumented",
        "script": "def handler():\n    return 1\n"}),
    )
    .await;

    // The document wants a token of the tenant, since some endpoints do.
    let url = format!("{}/shop/openapi.json", server.base);
    let refused = request("GET", &url, &[], b"").await;
    assert_eq!(refused.status, 401);
    // Tools in other origins (Swagger UI) read it with a token, and see why they cannot.
    assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    let preflight = request(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://editor.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 204, "{:?}", preflight.body);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization")
    );
    assert_eq!(preflight.header("access-control-allow-credentials"), None);
    let everything = format!(
        "Bearer {}",
        token(&server, "shop", json!({"name": "all"})).await
    );
    let reply = request("GET", &url, &[("authorization", &everything)], b"").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let document = reply.json();
    let (valid, report) = validate(&document, "shop");
    assert!(
        valid,
        "the document is not valid OpenAPI 3.1: {report}\n{document:#}"
    );
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], "/shop");
    let place = &document["paths"]["/shops/{shop}/orders"]["post"];
    assert_eq!(place["operationId"], "place_order");
    assert_eq!(place["summary"], "Place an order.");
    assert_eq!(
        place["description"],
        "Place an order.\n\nStores nothing: echoes what it was given."
    );
    assert_eq!(
        place["parameters"][0],
        json!({"name": "shop", "in": "path", "required": true, "schema": {"type": "string"}})
    );
    assert_eq!(place["security"], json!([{"bearerJwt": []}]));
    assert_eq!(
        place["requestBody"]["content"]["application/json"]["schema"],
        order_schema
    );
    assert_eq!(
        place["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["placed"]
            ["type"],
        "string"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearerJwt"]["scheme"],
        "bearer"
    );
    let hello = &document["paths"]["/hello"]["get"];
    assert_eq!(hello["security"], json!([]));
    assert_eq!(hello["description"], "Says hello.");
    assert!(
        document["paths"]["/undocumented"]["get"]
            .get("description")
            .is_none()
    );

    // A token limited to one endpoint sees that one and the public ones only.
    let limited = format!(
        "Bearer {}",
        token(
            &server,
            "shop",
            json!({"name": "one", "endpoints": ["undocumented"]})
        )
        .await
    );
    let seen = request("GET", &url, &[("authorization", &limited)], b"")
        .await
        .json();
    let paths: Vec<&String> = seen["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/hello", "/undocumented"], "{seen:#}");
    assert!(validate(&seen, "limited").0);

    // A body that misses the schema is refused with every violation, and the handler never runs.
    let orders = format!("{}/shop/shops/s1/orders", server.base);
    let json_type = ("content-type", "application/json");
    let refused = request(
        "POST",
        &orders,
        &[("authorization", &everything), json_type],
        br#"{"item": "", "qty": 0, "coupon": "FREE"}"#,
    )
    .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let violations = refused.json()["violations"].as_array().unwrap().clone();
    assert_eq!(violations.len(), 3, "{violations:?}");
    let pointers: Vec<&str> = violations
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/item") && pointers.contains(&"/qty"),
        "{violations:?}"
    );
    let not_json = request(
        "POST",
        &orders,
        &[("authorization", &everything), json_type],
        b"item=x",
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.json()["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    let form = request(
        "POST",
        &orders,
        &[
            ("authorization", &everything),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"item=x&qty=1",
    )
    .await;
    assert_eq!(form.status, 415, "{:?}", form.body);
    // Only a valid token gets as far as the schema.
    let anonymous = request(
        "POST",
        &orders,
        &[json_type],
        br#"{"item": "tea", "qty": 1}"#,
    )
    .await;
    assert_eq!(anonymous.status, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        handler_logs(&server, "shop", "place_order")
            .await
            .is_empty(),
        "a refused request reached the handler"
    );

    let placed = request(
        "POST",
        &orders,
        &[("authorization", &everything), json_type],
        br#"{"item": "tea", "qty": 2}"#,
    )
    .await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
    assert_eq!(placed.json(), json!({"placed": "tea", "id": "s1"}));
    common::eventually(
        "the handler's log entry",
        Duration::from_secs(10),
        || async {
            let logs = handler_logs(&server, "shop", "place_order").await;
            (logs.len() == 1).then_some(())
        },
    )
    .await;

    // Only GET, and the path is the server's: no endpoint may take it.
    assert_eq!(
        request("POST", &url, &[("authorization", &everything)], b"")
            .await
            .status,
        405
    );
    let taken = admin(&server, "PUT", "/tenants/shop/endpoints/doc",
                      json!({"method": "GET", "route": "/openapi.json", "script": "def handler():\n    return 1\n"})).await;
    assert_eq!(taken.status, 400, "{:?}", taken.body);
    // A schema that is not one is refused at deploy, naming the field.
    let bad = admin(
        &server,
        "PUT",
        "/tenants/shop/endpoints/bad",
        json!({"method": "POST", "route": "/bad", "script": "def handler():\n    return 1\n",
                           "request_schema": {"type": "no-such-type"}}),
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(
        bad.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("request_schema: "),
        "{:?}",
        bad.body
    );
    let remote = admin(
        &server,
        "PUT",
        "/tenants/shop/endpoints/bad",
        json!({"method": "POST", "route": "/bad", "script": "def handler():\n    return 1\n",
                              "response_schema": {"$ref": "http://127.0.0.1:1/schema.json"}}),
    )
    .await;
    assert_eq!(remote.status, 400, "{:?}", remote.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_whose_endpoints_are_all_public_has_a_public_document() {
    let db = fresh_database("openapi_public").await;
    let server = Server::start(Some(&db), &[]);
    let created = admin(&server, "POST", "/tenants", json!({"name": "open"})).await;
    assert_eq!(created.status, 201);
    let url = format!("{}/open/openapi.json", server.base);
    // The checker does reject: a document without `info` is not OpenAPI.
    let (valid, _) = validate(&json!({"openapi": "3.1.0", "paths": {}}), "broken");
    assert!(
        !valid,
        "openapi-spec-validator passed a document without info"
    );
    // No endpoints yet: an empty, valid document.
    let empty = request("GET", &url, &[], b"").await;
    assert_eq!(empty.status, 200, "{:?}", empty.body);
    assert!(validate(&empty.json(), "empty").0);
    deploy(&server, "open", "items", json!({
        "method": "GET", "route": "/items/{id}", "auth": "public",
        "script": "def handler(request):\n    \"\"\"One item, by id.\"\"\"\n    return {'id': request['path_params']['id']}\n"})).await;
    let reply = request("GET", &url, &[], b"").await;
    assert_eq!(reply.status, 200);
    let document = reply.json();
    let (valid, report) = validate(&document, "open");
    assert!(valid, "{report}");
    assert_eq!(
        document["paths"]["/items/{id}"]["get"]["summary"],
        "One item, by id."
    );
    // Unknown tenants answer as unknown endpoints do.
    assert_eq!(
        request(
            "GET",
            &format!("{}/nobody/openapi.json", server.base),
            &[],
            b""
        )
        .await
        .status,
        404
    );
}
