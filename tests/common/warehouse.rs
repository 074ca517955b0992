//! A tenant warehouse for data-access tests: `dw_2` with `salesforce.accounts` holding one
#![allow(dead_code)]
//! row of every type the SDK maps, owned by the tenant's role as its own tables would be.

use serde_json::json;

use crate::common::{self, Server, admin, request};

/// Creates `dw_2` for `tenant` and fills `salesforce.accounts`; returns the PostgreSQL
/// database's name.
pub async fn seed(server: &Server, tenant: &str) -> String {
    let created = admin(
        server,
        "PUT",
        &format!("/tenants/{tenant}/databases/dw_2"),
        json!({}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let dbname = created.json()["dbname"].as_str().unwrap().to_string();
    let client = superuser(&dbname).await;
    let owner = public_owner(&client).await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA salesforce AUTHORIZATION {owner};
             CREATE TABLE salesforce.accounts (id int4 PRIMARY KEY, name text, revenue numeric(12,2),
               active bool, score float8, created timestamptz, tags text[], meta jsonb, logo bytea,
               uid uuid, span interval, day date);
             ALTER TABLE salesforce.accounts OWNER TO {owner};
             INSERT INTO salesforce.accounts VALUES
               (1, 'Acme', 1234.50, true, 0.5, '2026-01-02 03:04:05+00', ARRAY['a','b'], '{{\"k\": [1, 2]}}',
                '\\x0102', '00000000-0000-0000-0000-000000000001', '1 day 02:00:00', '2026-02-03'),
               (2, 'Globex', NULL, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();
    dbname
}

/// The role owning the database's `public` schema: the tenant's role, which must own the
/// tables a test creates as superuser, as it would own its own.
pub async fn public_owner(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A superuser connection to `dbname` on the test cluster.
pub async fn superuser(dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = common::cluster()
        .config(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `GET path` with an Authorization header.
pub async fn get(server: &Server, path: &str, auth: &str) -> common::Reply {
    request(
        "GET",
        &format!("{}{path}", server.base),
        &[("authorization", auth)],
        b"",
    )
    .await
}

/// A data-plane `Authorization` header for `tenant`.
pub async fn bearer(server: &Server, tenant: &str) -> String {
    format!(
        "Bearer {}",
        common::token(server, tenant, json!({"name": "c"})).await
    )
}

/// The newest log entry of the endpoint (its error and traceback), to explain a failure.
pub async fn last_log(server: &Server, tenant: &str, endpoint: &str) -> String {
    // Log entries are written in batches: give the writer a moment.
    let path = format!("/tenants/{tenant}/endpoints/{endpoint}/logs?limit=1");
    let logs = common::eventually(
        "a log entry",
        std::time::Duration::from_secs(10),
        || async {
            let logs = admin(server, "GET", &path, json!(null)).await.json();
            logs[0].is_object().then_some(logs)
        },
    )
    .await;
    format!(
        "{}\n{}\n{}",
        logs[0]["error"],
        logs[0]["traceback"].as_str().unwrap_or(""),
        logs[0]["output"].as_str().unwrap_or("")
    )
}
