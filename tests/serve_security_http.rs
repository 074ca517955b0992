//! Attacks of the outside review through HTTP (issue 12): a handler desyncing a kept-alive
//! connection, taking a connection over, telling tenants apart for an unauthenticated caller,
//! planting browser state for the whole origin; drafts that ran another draft's code or
//! escaped their tenant's caps.

#[path = "common/server.rs"]
mod common;

use std::time::Duration;

use common::{Server, admin, deploy, fresh_database, request};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response read off a raw connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads what the connection has next onto `buffer`.
async fn read_more(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
        .await
        .expect("a response in time")
        .unwrap();
    assert!(
        n > 0,
        "the connection closed with {:?} unread",
        String::from_utf8_lossy(buffer)
    );
    buffer.extend_from_slice(&chunk[..n]);
}

/// Sends `GET path` on a kept-alive raw connection and reads exactly one response (by its
/// content-length), leaving whatever follows on the connection for the next read.
async fn raw_get(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>, path: &str) -> RawReply {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await;
    };
    let head = String::from_utf8(buffer[..end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buffer.len() < end + length {
        read_more(stream, buffer).await;
    }
    let body = buffer[end..end + length].to_vec();
    buffer.drain(..end + length);
    RawReply { status, head, body }
}

const FORGED: &str = "HTTP/1.1 200 OK\\r\\ncontent-length: 6\\r\\n\\r\\nforged";

async fn deploy_public(server: &Server, tenant: &str, name: &str, script: &str) {
    deploy(
        server,
        tenant,
        name,
        json!({"method": "GET", "route": format!("/{name}"), "script": script, "auth": "public"}),
    )
    .await;
}

/// The handlers of the desync attacks, and a plain one to see what the connection answers next.
async fn desync_tenant(server: &Server) {
    let created = admin(server, "POST", "/tenants", json!({"name": "smuggler"})).await;
    assert_eq!(created.status, 201, "{created:?}");
    deploy_public(
        server,
        "smuggler",
        "hello",
        "def handler():\n    return 'hello'\n",
    )
    .await;
    let smuggle =
        format!("def handler():\n    return ('OK' + '{FORGED}', 200, {{'content-length': '2'}})\n");
    deploy_public(server, "smuggler", "smuggle", &smuggle).await;
    deploy_public(
        server,
        "smuggler",
        "chunked",
        "def handler():\n    return ('x', 200, {'Transfer-Encoding': 'chunked', 'content-length': '999999'})\n",
    )
    .await;
    deploy_public(
        server,
        "smuggler",
        "upgrade",
        "def handler():\n    return ('', 101, {'upgrade': 'websocket', 'connection': 'Upgrade'})\n",
    )
    .await;
    deploy_public(
        server,
        "smuggler",
        "hopbyhop",
        "def handler():\n    return ('x', 200, {'Keep-Alive': 'timeout=5', 'Proxy-Authenticate': 'Basic'})\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_cannot_desync_or_take_over_an_http1_connection() {
    let db = fresh_database("desync1").await;
    let server = Server::start(Some(&db), &[]);
    desync_tenant(&server).await;
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut buffer = Vec::new();
    for (attack, named) in [
        ("/smuggler/smuggle", "content-length"),
        ("/smuggler/chunked", "transfer-encoding"),
        ("/smuggler/upgrade", "101"),
        ("/smuggler/hopbyhop", "keep-alive"),
    ] {
        let reply = raw_get(&mut stream, &mut buffer, attack).await;
        assert_eq!(reply.status, 502, "{attack}: {reply:?}");
        assert!(
            reply
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{attack}: {reply:?}"
        );
        let problem: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let detail = problem["detail"].as_str().unwrap().to_ascii_lowercase();
        assert!(
            detail.contains(named),
            "{attack}: the problem names {named}: {detail}"
        );
        // The same connection answers the next request with its own response.
        let next = raw_get(&mut stream, &mut buffer, "/smuggler/hello").await;
        assert_eq!(
            (next.status, &next.body[..]),
            (200, &b"hello"[..]),
            "after {attack}: {next:?}"
        );
        assert!(
            buffer.is_empty(),
            "after {attack}, nothing more was sent: {buffer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_cannot_break_an_http2_connection() {
    use http_body_util::{BodyExt, Full};
    let db = fresh_database("desync2").await;
    let server = Server::start(Some(&db), &[]);
    desync_tenant(&server).await;
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
    let authority = server.base.trim_start_matches("http://").to_string();
    for path in [
        "/smuggler/smuggle",
        "/smuggler/hello",
        "/smuggler/chunked",
        "/smuggler/hello",
        "/smuggler/upgrade",
        "/smuggler/hopbyhop",
        "/smuggler/hello",
    ] {
        let request = hyper::Request::builder()
            .uri(format!("http://{authority}{path}"))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .expect("the stream is answered");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if path.ends_with("hello") {
            assert_eq!((status, &body[..]), (200, &b"hello"[..]), "{path}");
        } else {
            assert_eq!(status, 502, "{path}: {body:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tenants_and_unknown_routes_look_alike() {
    let db = fresh_database("probing").await;
    let server = Server::start(Some(&db), &[]);
    common::tenant_with_endpoint(
        &server,
        "known",
        "e",
        "/e",
        "def handler():\n    return 1\n",
    )
    .await;
    let probe = |path: &str| {
        let url = format!("{}{path}", server.base);
        async move {
            let reply = request("GET", &url, &[], b"").await;
            let mut problem = reply.json();
            problem["request_id"] = json!(null);
            (reply.status, problem)
        }
    };
    let no_tenant = probe("/no-such-tenant/e").await;
    let no_route = probe("/known/no-such-route").await;
    assert_eq!(no_tenant.0, 404);
    assert_eq!(no_tenant, no_route);
    assert_eq!(
        probe("/no-such-tenant/_whoami").await,
        probe("/known/a/b/c").await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_responses_cannot_touch_the_shared_origins_browser_state() {
    let db = fresh_database("origin").await;
    let server = Server::start(Some(&db), &[]);
    let created = admin(&server, "POST", "/tenants", json!({"name": "evil"})).await;
    assert_eq!(created.status, 201);
    let script = "def handler():\n    return ('<script>navigator.serviceWorker.register(\"sw.js\", {scope: \"/\"})</script>', 200, [\
        ('content-type', 'text/html'), ('service-worker-allowed', '/'), ('clear-site-data', '\"*\"'), \
        ('strict-transport-security', 'max-age=31536000'), ('set-cookie', 'session=evil; Path=/; Domain=127.0.0.1'), \
        ('content-security-policy', 'default-src *'), ('x-kept', 'yes')])\n";
    deploy_public(&server, "evil", "page", script).await;
    let reply = request("GET", &format!("{}/evil/page", server.base), &[], b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for dropped in [
        "service-worker-allowed",
        "clear-site-data",
        "strict-transport-security",
    ] {
        assert!(reply.header(dropped).is_none(), "{dropped}: {reply:?}");
    }
    assert_eq!(reply.header("x-kept"), Some("yes"));
    assert_eq!(reply.header("set-cookie"), Some("session=evil; Path=/evil"));
    let policies: Vec<_> = reply
        .headers
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(
        policies,
        ["default-src *", "sandbox"],
        "the tenant's policy cannot lift ours"
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    // The tenant learns why, in its log.
    let log = common_last_output(&server, "evil", "page").await;
    assert!(log.contains("service-worker-allowed"), "{log}");
}

/// The newest log entry's output of an endpoint (entries are written in batches).
async fn common_last_output(server: &Server, tenant: &str, endpoint: &str) -> String {
    let path = format!("/tenants/{tenant}/endpoints/{endpoint}/logs?limit=1");
    common::eventually("a log entry", Duration::from_secs(10), || async {
        let logs = admin(server, "GET", &path, json!(null)).await.json();
        logs[0]["output"].as_str().map(str::to_string)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_and_tenant_hosts_are_origins_of_their_own() {
    let db = fresh_database("origins").await;
    let server = Server::start(
        Some(&db),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--tenant-domain",
            "fn.test",
        ],
    );
    assert_ne!(server.base, server.admin_base);
    let created = admin(&server, "POST", "/tenants", json!({"name": "acme"})).await;
    assert_eq!(created.status, 201, "{created:?}");
    deploy_public(
        &server,
        "acme",
        "hi",
        "def handler():\n    return ('hi ' + request.path, 200, {'strict-transport-security': 'max-age=60', 'set-cookie': 's=1; Domain=fn.test'})\n",
    )
    .await;
    let port = server.base.rsplit(':').next().unwrap();
    let on_host = request(
        "GET",
        &format!("{}/hi", server.base),
        &[("host", &format!("acme.fn.test:{port}"))],
        b"",
    )
    .await;
    assert_eq!(
        (on_host.status, &on_host.body[..]),
        (200, &b"hi /hi"[..]),
        "{on_host:?}"
    );
    // Its own origin: its HSTS is its own business; a cookie never reaches the parent domain.
    assert_eq!(
        on_host.header("strict-transport-security"),
        Some("max-age=60")
    );
    assert_eq!(on_host.header("set-cookie"), Some("s=1"));
    // No tenant below a path of a shared host, no admin API on the data listener...
    for path in ["/acme/hi", "/admin/v1/tenants", "/console/", "/metrics"] {
        let reply = request("GET", &format!("{}{path}", server.base), &[], b"").await;
        assert_eq!(reply.status, 404, "{path} on the data listener");
    }
    let console_on_tenant_host = request(
        "GET",
        &format!("{}/console/", server.base),
        &[("host", &format!("acme.fn.test:{port}"))],
        b"",
    )
    .await;
    assert_eq!(console_on_tenant_host.status, 404);
    // ...and no tenant endpoint on the admin listener, whatever the host says.
    let admin_host = request(
        "GET",
        &format!("{}/hi", server.admin_base),
        &[("host", "acme.fn.test")],
        b"",
    )
    .await;
    assert_eq!(admin_host.status, 404);
    let console = request("GET", &format!("{}/console/", server.admin_base), &[], b"").await;
    assert_eq!(console.status, 200);
}

const DRAFT_SLEEP: &str = "import time\ndef handler():\n    time.sleep(3)\n    return 'slept'\n";

async fn run_draft(server: &Server, tenant: &str, body: serde_json::Value) -> common::Reply {
    admin(server, "POST", &format!("/tenants/{tenant}/run"), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_draft_runs_the_script_it_was_sent() {
    let db = fresh_database("drafts").await;
    let server = Server::start(Some(&db), &[]);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "acme"}))
            .await
            .status,
        201
    );
    for text in ["FIRST DRAFT", "SECOND DRAFT"] {
        let script = format!("def handler():\n    return '{text}'\n");
        let reply = run_draft(&server, "acme", json!({"script": script})).await;
        assert_eq!(reply.json()["body"], text, "{reply:?}");
    }
    let broken = run_draft(
        &server,
        "acme",
        json!({"script": "def handler(:\n    return 1\n"}),
    )
    .await;
    let result = broken.json();
    assert_eq!(result["status"], json!(null), "{result}");
    assert_eq!(result["error"]["kind"], "syntax", "{result}");
    assert_eq!(result["error"]["line"], 1, "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drafts_count_against_the_tenants_caps() {
    let db = fresh_database("draftcaps").await;
    let server = Server::start(Some(&db), &common::METRICS_ARGS);
    let created = admin(
        &server,
        "POST",
        "/tenants",
        json!({"name": "acme", "limits": {"max_concurrency": 1, "max_cpu_ms": 300}}),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let first = {
        let (admin_base, body) = (server.admin_base.clone(), json!({"script": DRAFT_SLEEP}));
        tokio::spawn(async move {
            request(
                "POST",
                &format!("{admin_base}/admin/v1/tenants/acme/run"),
                &[("authorization", &format!("Bearer {}", common::ADMIN_KEY))],
                body.to_string().as_bytes(),
            )
            .await
        })
    };
    common::wait_for_instances(&server, 1).await;
    for _ in 0..2 {
        let refused = run_draft(&server, "acme", json!({"script": DRAFT_SLEEP})).await;
        assert_eq!(refused.status, 429, "{refused:?}");
    }
    assert_eq!(first.await.unwrap().json()["body"], "slept");
    // A draft's limits are capped by what the operator allows the tenant's calls.
    let spin = json!({"script": "def handler():\n    while True:\n        pass\n", "limits": {"cpu_ms": 600000, "wall_ms": 600000}});
    let result = run_draft(&server, "acme", spin).await.json();
    assert_eq!(result["limits"]["cpu_ms"], 300, "{result}");
    let message = result["error"]["message"].as_str().unwrap();
    assert!(message.contains("CPU time limit of 300 ms"), "{message}");
}
