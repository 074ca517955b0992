//! The caller's claims inside the tenant's database (`db_claims`): row-level security
//! policies written against `request.jwt.claims` give each caller only its rows, over real HTTP
//! against a real PostgreSQL, and handlers cannot forge the claims.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, deploy, fresh_database, token};
use serde_json::{Value, json};
use warehouse::{get, last_log};

const SCHEMA: &str = "
CREATE TABLE notes (id serial PRIMARY KEY, owner text NOT NULL, body text);
INSERT INTO notes (owner, body) VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON notes USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
";

const NOTES: &str = "def handler():\n    return [r['body'] for r in pq.dbconnect('dw').fetch('dw', 'public', 'notes', order_by='id')]\n";

const NOTES_IN_TRANSACTION: &str = "def handler():
    db = pq.dbconnect('dw')
    with db.transaction('dw'):
        return [r['body'] for r in db.fetch('dw', 'public', 'notes', order_by='id')]
";

const SETTINGS: &str = "def handler():
    row = pq.dbconnect('dw').fetch('dw', query=\"SELECT current_setting('request.jwt.claims', true) AS c, current_setting('request.endpoint', true) AS e\")[0]
    return {'claims': row['c'], 'endpoint': row['e']}
";

const FORGE: &str = "def handler():
    db = pq.dbconnect('dw')
    refused = []
    for sql in [\"SELECT set_config('request.jwt.claims', '{\\\"sub\\\": \\\"bob\\\"}', true)\",
                \"SET LOCAL request.jwt.claims = '{}'\", 'RESET ALL']:
        try:
            db.execute('dw', query=sql)
            refused.append('ran: ' + sql)
        except pq.DatabaseError as e:
            refused.append(str(e))
    return refused
";

async fn endpoint(server: &Server, name: &str, script: &str, auth: &str) {
    deploy(
        server,
        "rls",
        name,
        json!({"method": "GET", "route": format!("/{name}"), "script": script,
               "auth": auth, "db_claims": name != "plain"}),
    )
    .await;
}

async fn call(server: &Server, path: &str, auth: &str) -> Value {
    let reply = get(server, path, auth).await;
    let endpoint = path.trim_start_matches("/rls/");
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(server, "rls", endpoint).await
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_caller_sees_only_its_rows_and_handlers_cannot_forge_claims() {
    let db = fresh_database("tenantclaims").await;
    let server = Server::start(Some(&db), &[]);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "rls"}))
            .await
            .status,
        201
    );
    assert_eq!(
        admin(&server, "PUT", "/tenants/rls/databases/dw", json!({}))
            .await
            .status,
        201
    );
    let setup = admin(
        &server,
        "POST",
        "/tenants/rls/databases/dw/sql",
        json!({"sql": SCHEMA}),
    )
    .await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    endpoint(&server, "notes", NOTES, "jwt").await;
    endpoint(&server, "tx", NOTES_IN_TRANSACTION, "jwt").await;
    endpoint(&server, "settings", SETTINGS, "jwt").await;
    endpoint(&server, "forge", FORGE, "jwt").await;
    endpoint(&server, "public", NOTES, "public").await;
    endpoint(&server, "plain", SETTINGS, "jwt").await;

    let alice = format!(
        "Bearer {}",
        token(
            &server,
            "rls",
            json!({"name": "alice", "claims": {"team": "red"}})
        )
        .await
    );
    let bob = format!(
        "Bearer {}",
        token(&server, "rls", json!({"name": "bob"})).await
    );
    assert_eq!(
        call(&server, "/rls/notes", &alice).await,
        json!(["a1", "a2"])
    );
    assert_eq!(call(&server, "/rls/notes", &bob).await, json!(["b1"]));
    assert_eq!(call(&server, "/rls/tx", &bob).await, json!(["b1"]));
    assert_eq!(call(&server, "/rls/public", "").await, json!([]));

    let settings = call(&server, "/rls/settings", &alice).await;
    let claims: Value = serde_json::from_str(settings["claims"].as_str().unwrap()).unwrap();
    assert_eq!(
        (claims["sub"].clone(), claims["team"].clone()),
        (json!("alice"), json!("red")),
        "{settings}"
    );
    assert_eq!(settings["endpoint"], "settings");
    // Without db_claims nothing is set.
    let plain = call(&server, "/rls/plain", &alice).await;
    assert!(
        plain["claims"].is_null() || plain["claims"] == "",
        "{plain}"
    );

    let forged = call(&server, "/rls/forge", &alice).await;
    for outcome in forged.as_array().unwrap() {
        let outcome = outcome.as_str().unwrap();
        assert!(!outcome.starts_with("ran:"), "{forged}");
        assert!(
            outcome.contains("set_config") || outcome.contains("request."),
            "{forged}"
        );
    }
    assert_eq!(
        call(&server, "/rls/notes", &alice).await,
        json!(["a1", "a2"])
    );

    // pubfn's own claim names stay pubfn's.
    for reserved in ["sub", "aud", "admin", "exp"] {
        let reply = admin(
            &server,
            "POST",
            "/tenants/rls/tokens",
            json!({"name": "x", "claims": {reserved: "y"}}),
        )
        .await;
        assert_eq!(reply.status, 400, "{reserved}: {:?}", reply.body);
    }
}
