//! Faults from outside the handler: a flood of connections, PostgreSQL stopped under write
//! load, and an instance trapped mid-request. (SIGTERM draining is in serve_control_plane.rs,
//! slow headers in serve_data_plane.rs.)

#[path = "common/server.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, admin, deploy, request, tenant_with_endpoint, token};
use pubfn::db::LocalCluster;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_connections_is_capped_and_health_still_answers() {
    let db = common::fresh_database("flood").await;
    let server = Server::start(
        Some(&db),
        &["--max-connections", "32", "--header-timeout-ms", "500"],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    // Five times the cap, each sending nothing.
    let mut flood = Vec::new();
    for _ in 0..160 {
        flood.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let health = request("GET", &format!("{}/healthz", server.base), &[], b"").await;
    assert_eq!(health.status, 200);
    // The server hung up on the idle ones it accepted: reading ends, nothing was answered.
    let mut closed = 0;
    for mut stream in flood.into_iter().take(32) {
        let mut buf = Vec::new();
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 32, "idle connections must be closed by the server");

    // Idle between requests too: a kept-alive connection that goes quiet is closed.
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = kept.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let mut rest = Vec::new();
    let idle = tokio::time::timeout(Duration::from_secs(10), kept.read_to_end(&mut rest)).await;
    assert!(
        matches!(idle, Ok(Ok(_))),
        "an idle kept-alive connection must be closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_trapped_mid_request_is_never_reused() {
    let db = common::fresh_database("trapped").await;
    let server = Server::start(Some(&db), &[]);
    let script = "import pq\ncalls = 0\ndef handler():\n    global calls\n    calls += 1\n    if pq.request.args.get('spin'):\n        while True: pass\n    return calls\n";
    tenant_with_endpoint(&server, "trap", "e", "/e", script).await;
    deploy(
        &server,
        "trap",
        "e",
        json!({"method": "GET", "route": "/e", "script": script, "isolation": "warm",
               "limits": {"cpu_ms": 200}}),
    )
    .await;
    let auth = format!(
        "Bearer {}",
        token(&server, "trap", json!({"name": "c"})).await
    );
    let call = |query: &'static str| {
        let (url, auth) = (format!("{}/trap/e{query}", server.base), auth.clone());
        async move { request("GET", &url, &[("authorization", &auth)], b"").await }
    };
    assert_eq!(call("").await.body, "1");
    assert_eq!(
        call("").await.body,
        "2",
        "a warm instance serves the next request"
    );
    assert_eq!(call("?spin=1").await.status, 504);
    assert_eq!(
        call("").await.body,
        "1",
        "the interrupted instance was dropped: a fresh one answers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_under_write_load_loses_no_acknowledged_write() {
    let dir = common::private_tempdir("pubfn-writes-outage-");
    let pg_dir = dir.path().join("pg");
    let mut cluster = LocalCluster::start(&pg_dir).unwrap();
    let server = Server::start(Some(&cluster.url("postgres")), &[]);
    let created = admin(&server, "POST", "/tenants", json!({"name": "ledger"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let database = admin(&server, "PUT", "/tenants/ledger/databases/dw", json!({})).await;
    assert_eq!(database.status, 201, "{:?}", database.body);
    let dbname = database.json()["dbname"].as_str().unwrap().to_string();
    let setup = "import pq\ndef handler():\n    pq.dbconnect('dw').execute('dw', query='CREATE TABLE acks (id bigint PRIMARY KEY)')\n    return 'ok'\n";
    let write = "import pq\ndef handler():\n    n = int(pq.request.args['n'])\n    pq.dbconnect('dw').insert('dw', 'public', 'acks', {'id': n})\n    return n\n";
    for (name, script) in [("setup", setup), ("write", write)] {
        deploy(
            &server,
            "ledger",
            name,
            json!({"method": "GET", "route": format!("/{name}"), "script": script,
                   "limits": {"wall_ms": 5000}}),
        )
        .await;
    }
    let auth = format!(
        "Bearer {}",
        token(&server, "ledger", json!({"name": "c"})).await
    );
    let setup = request(
        "GET",
        &format!("{}/ledger/setup", server.base),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let unavailable = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (stop, next, acknowledged, unavailable) = (
            stop.clone(),
            next.clone(),
            acknowledged.clone(),
            unavailable.clone(),
        );
        let (base, auth) = (server.base.clone(), auth.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // `request` gives up (and fails the test) after 60 s: no request may hang.
                let reply = request(
                    "GET",
                    &format!("{base}/ledger/write?n={n}"),
                    &[("authorization", &auth)],
                    b"",
                )
                .await;
                match reply.status {
                    200 => {
                        acknowledged.lock().unwrap().insert(n as i64);
                    }
                    503 => {
                        assert_eq!(
                            reply.header("content-type"),
                            Some("application/problem+json")
                        );
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("write {n}: {other} {:?}", reply.body),
                }
            }
        }));
    }
    let acked = || acknowledged.lock().unwrap().len();
    let minute = Duration::from_secs(60);
    common::eventually("50 writes acknowledged", minute, || async {
        (acked() >= 50).then_some(())
    })
    .await;
    cluster.stop().unwrap();
    common::eventually("writes refused with 503 while down", minute, || async {
        (unavailable.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    let before_restart = acked();
    let cluster = LocalCluster::start(&pg_dir).unwrap();
    common::eventually(
        "writes resume after PostgreSQL came back",
        minute,
        || async { (acked() >= before_restart + 50).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    let client = common::connect(&cluster.url(&dbname)).await;
    let stored: BTreeSet<i64> = client
        .query("SELECT id FROM acks", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(unavailable.load(Ordering::Relaxed) >= 20);
}
