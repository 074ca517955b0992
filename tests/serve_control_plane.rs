//! The admin API, several nodes on one PostgreSQL, graceful shutdown and the embedded default.

#[path = "common/server.rs"]
mod common;

use std::time::Duration;

use common::{Server, admin, deploy, fresh_database, request, tenant_with_endpoint, token};
use serde_json::json;

fn script(text: &str) -> String {
    format!("def handler():\n    return {{'v': '{text}'}}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_update_rollback_and_syntax_errors() {
    let db = fresh_database("deploys").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "shop", "item", "/item", &script("one")).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "shop", json!({"name": "c"})).await
    );
    let url = format!("{}/shop/item", server.base);
    let headers = [("authorization", auth.as_str())];
    let get = || request("GET", &url, &headers, b"");
    assert_eq!(get().await.json()["v"], "one");

    let v2 = deploy(
        &server,
        "shop",
        "item",
        json!({"method": "GET", "route": "/item", "script": script("two")}),
    )
    .await;
    assert_eq!(v2["version"]["version"], 2);
    assert_eq!(get().await.json()["v"], "two");

    let bad = json!({"method": "GET", "route": "/item", "script": "def handler(:\n    pass\n"});
    let refused = admin(&server, "PUT", "/tenants/shop/endpoints/item", bad).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        (
            refused.json()["line"].clone(),
            refused.json()["column"].clone()
        ),
        (json!(1), json!(13))
    );
    assert_eq!(
        get().await.json()["v"],
        "two",
        "a refused deploy changes nothing"
    );

    let versions = admin(
        &server,
        "GET",
        "/tenants/shop/endpoints/item/versions",
        json!(null),
    )
    .await
    .json();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let rolled = admin(
        &server,
        "POST",
        "/tenants/shop/endpoints/item/rollback",
        json!({"version": 1}),
    )
    .await;
    assert_eq!(rolled.status, 200);
    assert_eq!(get().await.json()["v"], "one");
    assert_eq!(
        admin(
            &server,
            "POST",
            "/tenants/shop/endpoints/item/rollback",
            json!({"version": 9})
        )
        .await
        .status,
        404
    );

    let clash = json!({"method": "GET", "route": "/item", "script": script("x")});
    assert_eq!(
        admin(&server, "PUT", "/tenants/shop/endpoints/other", clash)
            .await
            .status,
        409
    );
    let listed = admin(&server, "GET", "/tenants/shop/endpoints", json!(null))
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        admin(
            &server,
            "DELETE",
            "/tenants/shop/endpoints/item",
            json!(null)
        )
        .await
        .status,
        204
    );
    assert_eq!(get().await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admins_reach_only_their_tenant_and_data_tokens_no_admin_api() {
    let db = fresh_database("scopes").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "one", "e", "/e", &script("1")).await;
    tenant_with_endpoint(&server, "two", "e", "/e", &script("2")).await;
    let tenant_admin = format!(
        "Bearer {}",
        token(&server, "one", json!({"name": "adm", "admin": true})).await
    );
    let data_token = format!(
        "Bearer {}",
        token(&server, "one", json!({"name": "data"})).await
    );
    let call = |path: &str, auth: &str| {
        let url = format!("{}/admin/v1{path}", server.base);
        let auth = auth.to_string();
        async move {
            request("GET", &url, &[("authorization", &auth)], b"")
                .await
                .status
        }
    };
    assert_eq!(call("/tenants/one/endpoints", &tenant_admin).await, 200);
    assert_eq!(call("/tenants/two/endpoints", &tenant_admin).await, 403);
    assert_eq!(
        call("/tenants", &tenant_admin).await,
        403,
        "listing tenants is the operator's"
    );
    assert_eq!(call("/tenants/one/endpoints", &data_token).await, 403);
    assert_eq!(call("/tenants", "Bearer wrong-key").await, 401);
    let tokens = admin(&server, "GET", "/tenants/one/tokens", json!(null)).await;
    assert_eq!(tokens.status, 200);
    assert!(
        !String::from_utf8_lossy(&tokens.body).contains("eyJ"),
        "token values are never listed"
    );
    let no_expiry = admin(
        &server,
        "POST",
        "/tenants/one/tokens",
        json!({"name": "server", "no_expiry": true}),
    )
    .await;
    assert_eq!(no_expiry.json()["expires_at"], json!(null));
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "Bad Name"}))
            .await
            .status,
        400
    );
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "one"}))
            .await
            .status,
        409
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_on_one_node_reach_another_within_a_second() {
    let db = fresh_database("nodes").await;
    let a = Server::start(Some(&db), &[]);
    let b = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&a, "multi", "e", "/e", &script("first")).await;
    let issued = admin(&a, "POST", "/tenants/multi/tokens", json!({"name": "c"}))
        .await
        .json();
    let auth = format!("Bearer {}", issued["token"].as_str().unwrap());
    let on_b = format!("{}/multi/e", b.base);
    assert_eq!(
        request("GET", &on_b, &[("authorization", &auth)], b"")
            .await
            .json()["v"],
        "first"
    );

    deploy(
        &a,
        "multi",
        "e",
        json!({"method": "GET", "route": "/e", "script": script("second")}),
    )
    .await;
    // NOTIFY arrives in milliseconds; the margin is for a loaded CI machine.
    common::eventually(
        "the deploy reaches node B",
        Duration::from_secs(10),
        || async {
            let reply = request("GET", &on_b, &[("authorization", &auth)], b"").await;
            (reply.json()["v"] == "second").then_some(())
        },
    )
    .await;

    let jti = issued["jti"].as_str().unwrap();
    assert_eq!(
        admin(
            &a,
            "DELETE",
            &format!("/tenants/multi/tokens/{jti}"),
            json!(null)
        )
        .await
        .status,
        204
    );
    let limit = Duration::from_secs(3);
    common::wait_for_status(
        &on_b,
        &auth,
        401,
        limit,
        "the revocation did not reach node B",
    )
    .await;
}

/// `/metrics` lines of `server` that name `tenant`.
async fn tenant_metric_lines(server: &Server, tenant: &str) -> Vec<String> {
    let (status, text) = common::scrape(server, common::METRICS_TOKEN).await;
    assert_eq!(status, 200);
    let label = format!("tenant=\"{tenant}\"");
    text.lines()
        .filter(|line| {
            line.contains(&label)
                && (line.starts_with("pubfn_tenant_") || line.starts_with("pubfn_db_pool"))
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_tenant_is_let_go_of_on_every_node() {
    let db = fresh_database("letgo").await;
    let a = Server::start(Some(&db), &common::METRICS_ARGS);
    let b = Server::start(Some(&db), &common::METRICS_ARGS);
    assert_eq!(
        admin(&a, "POST", "/tenants", json!({"name": "gone"}))
            .await
            .status,
        201
    );
    let created = admin(&a, "PUT", "/tenants/gone/databases/dw_2", json!({})).await;
    assert_eq!(created.status, 201, "{created:?}");
    let reads = "import pq\ndef handler():\n    return pq.dbconnect('dw_2').fetch('dw_2', query='SELECT 1 AS one')\n";
    deploy(
        &a,
        "gone",
        "e",
        json!({"method": "GET", "route": "/e", "script": reads, "isolation": "warm"}),
    )
    .await;
    let auth = format!(
        "Bearer {}",
        common::token(&a, "gone", json!({"name": "c"})).await
    );
    let on_b = format!("{}/gone/e", b.base);
    common::wait_for_status(&on_b, &auth, 200, Duration::from_secs(10), "node B serves").await;
    // Node B now holds the tenant's snapshot, a warm instance and a database pool.
    let held = tenant_metric_lines(&b, "gone").await;
    for metric in [
        "pubfn_tenant_warm_instances",
        "pubfn_tenant_snapshot_loaded",
        "pubfn_db_pool",
    ] {
        assert!(
            held.iter()
                .any(|line| line.starts_with(metric) && !line.ends_with(" 0")),
            "{metric} on node B: {held:?}"
        );
    }

    assert_eq!(
        admin(&a, "DELETE", "/tenants/gone", json!(null))
            .await
            .status,
        204
    );
    common::eventually(
        "node B lets go of the deleted tenant's snapshot, instances and pools",
        Duration::from_secs(10),
        || async {
            let left = tenant_metric_lines(&b, "gone").await;
            left.is_empty().then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let db = fresh_database("drain").await;
    let mut server = Server::start(Some(&db), &common::METRICS_ARGS);
    let slow = "import time\ndef handler():\n    time.sleep(1.5)\n    return 'finished'\n";
    tenant_with_endpoint(&server, "drain", "slow", "/slow", slow).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "drain", json!({"name": "c"})).await
    );
    let url = format!("{}/drain/slow", server.base);
    let in_flight =
        tokio::spawn(async move { request("GET", &url, &[("authorization", &auth)], b"").await });
    // The call is running before the server is told to stop.
    common::wait_for_instances(&server, 1).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"finished");
    let (status, server) = status.await.unwrap();
    assert!(status.success(), "{status:?}");
    let refused = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await;
    assert!(refused.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_outliving_the_drain_timeout_does_not_hold_the_exit() {
    let db = fresh_database("draincut").await;
    let mut server = Server::start(
        Some(&db),
        &[
            common::METRICS_ARGS[0],
            common::METRICS_ARGS[1],
            "--drain-timeout-secs",
            "1",
        ],
    );
    let stuck = "import time\ndef handler():\n    time.sleep(60)\n    return 'late'\n";
    tenant_with_endpoint(&server, "draincut", "stuck", "/stuck", stuck).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "draincut", json!({"name": "c"})).await
    );
    assert_eq!(
        request("GET", &format!("{}/readyz", server.base), &[], b"")
            .await
            .status,
        200
    );
    let url = format!("{}/draincut/stuck", server.base);
    let in_flight =
        tokio::spawn(async move { request("GET", &url, &[("authorization", &auth)], b"").await });
    common::wait_for_instances(&server, 1).await;
    let asked = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    // The handler would sleep a minute; the server gave it the one second it was told to.
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "exited after {:?}",
        asked.elapsed()
    );
    assert!(status.success(), "{status:?}");
    in_flight.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_default_serves_the_demo_and_cleans_up() {
    let dir = common::private_tempdir("pubfn-embedded-");
    let data_dir = dir.path().join("data");
    let mut server = Server::start(None, &["--data-dir", data_dir.to_str().unwrap()]);
    let reply = admin(
        &server,
        "POST",
        "/tenants/demo/tokens",
        json!({"name": "t"}),
    )
    .await;
    let auth = format!("Bearer {}", reply.json()["token"].as_str().unwrap());
    let demo = request(
        "GET",
        &format!("{}/demo/accounts", server.base),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(demo.status, 200);
    let rows = demo.json();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
    assert_eq!(rows[0]["name"], "Acme Corp");
    assert_eq!(rows[1]["annual_revenue"], 8300000.5);
    assert!(server.terminate().success());
    let pid_file = data_dir.join("postgres/data/postmaster.pid");
    assert!(!pid_file.exists(), "the embedded PostgreSQL was stopped");
}
