//! Handlers' logs: a 500 names its request id, and the tenant finds that request's traceback.

#[path = "common/server.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    ADMIN_KEY, Server, admin, deploy, fresh_database, request, tenant_with_endpoint, token,
};
use serde_json::{Value, json};

/// Polls the logs until `done` holds (entries are written in the background).
async fn logs_until(server: &Server, path: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    common::eventually("the logs match", Duration::from_secs(10), || async {
        let reply = admin(server, "GET", path, json!(null)).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let entries = reply.json().as_array().unwrap().clone();
        done(&entries).then_some(entries)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_names_the_request_whose_traceback_is_in_the_logs() {
    let db = fresh_database("logs").await;
    let server = Server::start(Some(&db), &[]);
    let script = "def handler():\n    print('about to fail')\n    if request.args.get('fail'):\n        raise ValueError('secret detail')\n    return 'fine'\n";
    tenant_with_endpoint(&server, "logged", "e", "/e", script).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "logged", json!({"name": "c"})).await
    );
    let url = format!("{}/logged/e", server.base);
    assert_eq!(
        request("GET", &url, &[("authorization", &auth)], b"")
            .await
            .status,
        200
    );
    let failed = request(
        "GET",
        &format!("{url}?fail=1"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(failed.status, 500);
    let request_id = failed.json()["request_id"].as_str().unwrap().to_string();

    let entries = logs_until(&server, "/tenants/logged/endpoints/e/logs", |e| {
        e.len() == 2
    })
    .await;
    let entry = entries
        .iter()
        .find(|e| e["request_id"] == request_id.as_str())
        .expect("the failed request");
    assert_eq!(entry["status"], 500);
    assert_eq!(entry["output"], "about to fail\n");
    let traceback = entry["traceback"].as_str().unwrap();
    assert!(
        traceback.contains("line 4, in handler") && traceback.contains("ValueError: secret detail"),
        "{traceback}"
    );
    assert_eq!(entries[1]["status"], 200, "newest first");

    let newest = entries[0]["id"].as_i64().unwrap();
    let since = admin(
        &server,
        "GET",
        &format!("/tenants/logged/endpoints/e/logs?since={newest}"),
        json!(null),
    )
    .await;
    assert_eq!(since.json(), json!([]));
    let limited = admin(
        &server,
        "GET",
        "/tenants/logged/endpoints/e/logs?limit=1",
        json!(null),
    )
    .await;
    assert_eq!(limited.json().as_array().unwrap().len(), 1);
    assert_eq!(
        admin(
            &server,
            "GET",
            "/tenants/logged/endpoints/e/logs?limit=x",
            json!(null)
        )
        .await
        .status,
        400
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pubfn"))
        .args(["logs", "--tenant", "logged", "e", "--server", &server.base])
        .env("PUBFN_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        printed.contains(&request_id) && printed.contains("ValueError: secret detail"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_bounded_per_tenant() {
    let db = fresh_database("logretention").await;
    let server = Server::start(
        Some(&db),
        &[
            "--log-max-per-tenant",
            "2",
            "--log-prune-interval-secs",
            "1",
        ],
    );
    tenant_with_endpoint(
        &server,
        "chatty",
        "e",
        "/e",
        "def handler():\n    return 1\n",
    )
    .await;
    deploy(
        &server,
        "chatty",
        "e",
        json!({"method": "GET", "route": "/e", "auth": "public",
        "script": "def handler():\n    return 1\n"}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let reply = request("GET", &format!("{}/chatty/e", server.base), &[], b"").await;
        assert_eq!(reply.status, 200);
        ids.push(reply.header("x-request-id").unwrap().to_string());
    }
    // Exactly the two newest remain once pruning has run.
    let newest_two = [ids[4].as_str(), ids[3].as_str()];
    logs_until(&server, "/tenants/chatty/endpoints/e/logs", |e| {
        e.len() == 2
            && e.iter()
                .zip(newest_two)
                .all(|(entry, id)| entry["request_id"] == id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn routine_entries_beyond_their_rate_are_skipped_and_the_rest_always_written() {
    let db = fresh_database("logsampling").await;
    let server = Server::start(Some(&db), &["--log-routine-per-second", "2"]);
    let script = "def handler():\n    if request.args.get('say'):\n        print('said', request.args['say'])\n    return 'ok'\n";
    tenant_with_endpoint(&server, "busy", "e", "/e", script).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "busy", json!({"name": "c"})).await
    );
    let url = format!("{}/busy/e", server.base);
    let started = Instant::now();
    for _ in 0..20 {
        let reply = request("GET", &url, &[("authorization", &auth)], b"").await;
        assert_eq!(reply.status, 200);
    }
    for i in 0..3 {
        let reply = request(
            "GET",
            &format!("{url}?say={i}"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let entries = logs_until(&server, "/tenants/busy/endpoints/e/logs", |e| {
        e.iter().filter(|e| e["output"] != "").count() == 3
    })
    .await;
    let routine = entries.iter().filter(|e| e["output"] == "").count();
    // Two to start with, and whatever refilled at 2 a second while the calls ran.
    let refilled = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    assert!(
        (2..=2 + refilled).contains(&routine) && routine < 20,
        "{routine} routine entries of 20 calls at 2 a second ({refilled} refilled)"
    );
}
