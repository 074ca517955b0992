//! Tenants' secrets, endpoints' state, external databases and a tenant database's outage,
//! end to end through HTTP.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use std::time::Duration;

use common::{Server, admin, deploy, fresh_database, request, tenant_with_endpoint, token};
use pubfn::db::LocalCluster;
use serde_json::json;
use warehouse::{bearer, get, last_log};

const READ_SECRET: &str = r#"
import pq
def handler():
    try:
        return {'value': pq.get_secret(request.args['name'])}
    except pq.SecretNotFound as e:
        return {'missing': str(e), 'is_key_error': isinstance(e, KeyError)}
"#;

/// Bytes of the metadata table's rows, to check that a value is not stored in the clear.
async fn stored_bytes(database_url: &str, query: &str) -> Vec<u8> {
    let rows = common::connect(database_url)
        .await
        .query(query, &[])
        .await
        .unwrap();
    rows.iter()
        .flat_map(|row| row.get::<_, String>(0).into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_write_only_and_per_tenant() {
    let db = fresh_database("tenantsecrets").await;
    let server = Server::start(Some(&db), &[]);
    for tenant in ["keeper", "snoop"] {
        tenant_with_endpoint(&server, tenant, "s", "/s", READ_SECRET).await;
    }
    let value = "s3cr3t-value-Ω";
    let set = admin(
        &server,
        "PUT",
        "/tenants/keeper/secrets/API_KEY",
        json!({"value": value}),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let auth = bearer(&server, "keeper").await;
    let read = get(&server, "/keeper/s?name=API_KEY", &auth).await;
    assert_eq!(
        read.status,
        200,
        "{}",
        last_log(&server, "keeper", "s").await
    );
    assert_eq!(read.json(), json!({"value": value}));
    let missing = get(&server, "/keeper/s?name=NOPE", &auth).await.json();
    assert_eq!(missing["is_key_error"], true);
    assert!(missing["missing"].as_str().unwrap().contains("NOPE"));

    // Another tenant's handler asking for the same name finds nothing.
    let snoop = get(
        &server,
        "/snoop/s?name=API_KEY",
        &bearer(&server, "snoop").await,
    )
    .await;
    assert!(snoop.json()["missing"].is_string(), "{:?}", snoop.json());

    // Listed by name, never by value; sealed in the metadata.
    let listed = admin(&server, "GET", "/tenants/keeper/secrets", json!(null)).await;
    assert_eq!(listed.json()[0]["name"], "API_KEY");
    assert!(!String::from_utf8_lossy(&listed.body).contains("s3cr3t"));
    let stored = stored_bytes(
        &db,
        "SELECT encode(sealed, 'escape') FROM pubfn.tenant_secrets",
    )
    .await;
    assert!(
        !stored.windows(6).any(|w| w == b"s3cr3t"),
        "stored in the clear"
    );

    // A tenant admin manages its own secrets only.
    let tenant_admin = token(&server, "snoop", json!({"name": "ops", "admin": true})).await;
    let put = |tenant: &'static str| {
        let (base, auth) = (server.base.clone(), format!("Bearer {tenant_admin}"));
        async move {
            request(
                "PUT",
                &format!("{base}/admin/v1/tenants/{tenant}/secrets/X"),
                &[("authorization", &auth)],
                br#"{"value": "v"}"#,
            )
            .await
            .status
        }
    };
    assert_eq!(put("snoop").await, 200);
    assert_eq!(put("keeper").await, 403);

    let bad_name = admin(
        &server,
        "PUT",
        "/tenants/keeper/secrets/a%20b",
        json!({"value": "v"}),
    )
    .await;
    assert_eq!(bad_name.status, 400, "{:?}", bad_name.body);
    let no_value = admin(
        &server,
        "PUT",
        "/tenants/keeper/secrets/K",
        json!({"val": "v"}),
    )
    .await;
    assert_eq!(no_value.status, 400);

    // Deleting it is seen by the next request.
    let deleted = admin(
        &server,
        "DELETE",
        "/tenants/keeper/secrets/API_KEY",
        json!(null),
    )
    .await;
    assert_eq!(deleted.status, 204);
    let after = get(&server, "/keeper/s?name=API_KEY", &auth).await.json();
    assert!(after["missing"].is_string(), "{after:?}");
    let again = admin(
        &server,
        "DELETE",
        "/tenants/keeper/secrets/API_KEY",
        json!(null),
    )
    .await;
    assert_eq!(again.status, 404);
}

const COUNTER: &str = r#"
import pq
def handler():
    state = pq.get_state()
    state['n'] = state.get('n', 0) + 1
    pq.set_state(state)
    out = dict(state)
    try:
        pq.set_state({'big': 'x' * 70000})
    except pq.StateError as e:
        out['too_large'] = str(e)[:40]
    try:
        pq.set_state([1])
    except TypeError:
        out['not_a_dict'] = True
    pq.set_state(state)
    return out
"#;

#[tokio::test(flavor = "multi_thread")]
async fn state_persists_per_endpoint_and_is_capped() {
    let db = fresh_database("tenantstate").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "counting", "a", "/a", COUNTER).await;
    deploy(
        &server,
        "counting",
        "b",
        json!({"method": "GET", "route": "/b", "script": COUNTER, "isolation": "warm"}),
    )
    .await;
    let auth = bearer(&server, "counting").await;
    for n in 1..=3 {
        let reply = get(&server, "/counting/a", &auth).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            last_log(&server, "counting", "a").await
        );
        let out = reply.json();
        assert_eq!(out["n"], n);
        assert!(out["too_large"].as_str().unwrap().contains("state is"));
        assert_eq!(out["not_a_dict"], true);
    }
    assert_eq!(get(&server, "/counting/b", &auth).await.json()["n"], 1);
    assert_eq!(get(&server, "/counting/b", &auth).await.json()["n"], 2);
}

const EXTERNAL: &str = r#"
import pq
def handler():
    c = pq.dbconnect('ext')
    try:
        return {'rows': c.fetch('ext', 'public', 'things', order_by='id')}
    except pq.DatabaseUnavailable:
        if request.args.get('catch'):
            return {'unavailable': True}
        raise
"#;

#[tokio::test(flavor = "multi_thread")]
async fn external_databases_are_sealed_and_survive_an_outage() {
    let db = fresh_database("tenantexternal").await;
    let server = Server::start(Some(&db), &[]);
    // The tenant's own PostgreSQL, elsewhere: a cluster of its own with a password role.
    let dir = common::private_tempdir("pubfn-external-");
    let pg_dir = dir.path().join("pg");
    let mut external = LocalCluster::start(&pg_dir).unwrap();
    let (client, connection) = external
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for statement in [
        "CREATE ROLE shop LOGIN PASSWORD 'pw-hunter2'",
        "CREATE DATABASE shop OWNER shop",
    ] {
        client.batch_execute(statement).await.unwrap();
    }
    let password_url = external
        .url("shop")
        .replacen("://pubfn@", "://shop:pw-hunter2@", 1);
    assert!(password_url.contains("shop:pw-hunter2@"), "{password_url}");
    let shop = common::connect(&password_url).await;
    shop.batch_execute("CREATE TABLE things (id int PRIMARY KEY, name text); INSERT INTO things VALUES (1, 'lamp')")
        .await
        .unwrap();
    drop(shop);

    tenant_with_endpoint(&server, "shopper", "e", "/e", EXTERNAL).await;
    let bad = admin(
        &server,
        "PUT",
        "/tenants/shopper/databases/ext",
        json!({"url": "mysql://x"}),
    )
    .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let unreachable = admin(
        &server,
        "PUT",
        "/tenants/shopper/databases/ext",
        json!({"url": "postgresql://shop:pw@localhost/shop?host=/nonexistent"}),
    )
    .await;
    assert_eq!(unreachable.status, 400);
    assert!(String::from_utf8_lossy(&unreachable.body).contains("cannot connect"));
    let added = admin(
        &server,
        "PUT",
        "/tenants/shopper/databases/ext",
        json!({"url": password_url}),
    )
    .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    assert_eq!(added.json()["kind"], "external");
    let shown = admin(
        &server,
        "GET",
        "/tenants/shopper/databases/ext",
        json!(null),
    )
    .await;
    assert!(
        shown.json()["location"]
            .as_str()
            .unwrap()
            .starts_with("shop@"),
        "{:?}",
        shown.json()
    );
    assert!(!String::from_utf8_lossy(&shown.body).contains("hunter2"));
    let stored = stored_bytes(
        &db,
        "SELECT encode(sealed, 'escape') || coalesce(password, '') FROM pubfn.tenant_databases",
    )
    .await;
    assert!(
        !stored.windows(7).any(|w| w == b"hunter2"),
        "stored in the clear"
    );

    let auth = bearer(&server, "shopper").await;
    let url = format!("{}/shopper/e", server.base);
    let read = get(&server, "/shopper/e", &auth).await;
    assert_eq!(
        read.status,
        200,
        "{}",
        last_log(&server, "shopper", "e").await
    );
    assert_eq!(read.json(), json!({"rows": [{"id": 1, "name": "lamp"}]}));

    // The tenant's database goes away: a handler may catch it, else the client gets 503.
    external.stop().unwrap();
    let caught = get(&server, "/shopper/e?catch=1", &auth).await;
    assert_eq!(caught.json(), json!({"unavailable": true}));
    let uncaught = get(&server, "/shopper/e", &auth).await;
    assert_eq!(uncaught.status, 503, "{:?}", uncaught.body);
    assert_eq!(
        uncaught.header("content-type"),
        Some("application/problem+json")
    );

    // It comes back: the same node serves it again without a restart.
    let _external = LocalCluster::start(&pg_dir).unwrap();
    common::wait_for_status(&url, &auth, 200, Duration::from_secs(20), "no recovery").await;

    // Removing an external database only forgets it.
    let removed = admin(
        &server,
        "DELETE",
        "/tenants/shopper/databases/ext",
        json!(null),
    )
    .await;
    assert_eq!(removed.status, 204);
    let gone = get(&server, "/shopper/e", &auth).await;
    assert_eq!(gone.status, 500, "pq.DatabaseNotFound, uncaught");
    // Log entries are written in batches: wait for this request's.
    common::eventually(
        "the log entry of pq.DatabaseNotFound",
        Duration::from_secs(10),
        || async {
            let log = last_log(&server, "shopper", "e").await;
            log.contains("DatabaseNotFound").then_some(())
        },
    )
    .await;
}
