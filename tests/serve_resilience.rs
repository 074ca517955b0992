//! The server when its PostgreSQL goes away and comes back, and HTTP/2.

#[path = "common/server.rs"]
mod common;

use std::time::Duration;

use common::{Server, request, tenant_with_endpoint, token};
use pubfn::db::LocalCluster;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn database_outage_is_503_and_the_node_recovers_without_restart() {
    let dir = common::private_tempdir("pubfn-outage-");
    let pg_dir = dir.path().join("pg");
    let mut cluster = LocalCluster::start(&pg_dir).unwrap();
    let server = Server::start(Some(&cluster.url("postgres")), &[]);
    tenant_with_endpoint(
        &server,
        "steady",
        "e",
        "/e",
        "def handler():\n    return 'up'\n",
    )
    .await;
    let auth = format!(
        "Bearer {}",
        token(&server, "steady", json!({"name": "c"})).await
    );
    let url = format!("{}/steady/e", server.base);
    let readyz = format!("{}/readyz", server.base);
    assert_eq!(
        request("GET", &url, &[("authorization", &auth)], b"")
            .await
            .status,
        200
    );
    assert_eq!(request("GET", &readyz, &[], b"").await.status, 200);

    cluster.stop().unwrap();
    // The node re-syncs (drops its cache) when its notification connection breaks, so the
    // tenant must be loaded again: with PostgreSQL down that is a 503, within the deadline.
    let reply = common::eventually(
        "the node notices PostgreSQL is gone",
        Duration::from_secs(10),
        || async {
            let reply = request("GET", &url, &[("authorization", &auth)], b"").await;
            (reply.status != 200).then_some(reply)
        },
    )
    .await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        request("GET", &format!("{}/healthz", server.base), &[], b"")
            .await
            .status,
        200
    );
    // Out of rotation, not restarted: readiness fails (naming the part), liveness holds.
    let not_ready = common::eventually(
        "readiness notices PostgreSQL is gone",
        Duration::from_secs(10),
        || async {
            let reply = request("GET", &readyz, &[], b"").await;
            (reply.status != 200).then_some(reply)
        },
    )
    .await;
    assert_eq!(not_ready.status, 503);
    assert_eq!(
        not_ready.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        not_ready.json()["detail"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{}",
        not_ready.json()
    );

    let _cluster = LocalCluster::start(&pg_dir).unwrap();
    common::wait_for_status(
        &url,
        &auth,
        200,
        Duration::from_secs(20),
        "the node did not recover",
    )
    .await;
    common::eventually("ready again", Duration::from_secs(10), || async {
        (request("GET", &readyz, &[], b"").await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_with_prior_knowledge_is_served() {
    use http_body_util::BodyExt;
    let db = common::fresh_database("h2").await;
    let server = Server::start(Some(&db), &[]);
    let stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(format!("{}/healthz", server.base))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"status":"ok"}"#);
}
