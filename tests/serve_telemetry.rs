//! What operators see: `/metrics`, `Server-Timing`, and JSON log lines that carry the request
//! id and never tokens, secrets or SQL parameters.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{
    ADMIN_KEY, Server, admin, deploy, fresh_database, request, scrape, tenant_with_endpoint,
};
use serde_json::{Value, json};
use warehouse::{bearer, get, seed};

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

const DB_HANDLER: &str = "import pq\ndef handler():\n    return pq.dbconnect('dw_2').fetch('dw_2', 'salesforce', 'accounts', where={'id': 1})\n";

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_instances_limits_and_pools() {
    let db = fresh_database("telemetry").await;
    let server = Server::start(Some(&db), &["--metrics-token", "scrape-me"]);
    tenant_with_endpoint(&server, "acme", "db", "/db", DB_HANDLER).await;
    seed(&server, "acme").await;
    deploy(
        &server,
        "acme",
        "warm",
        json!({"method": "GET", "route": "/warm", "script": "def handler():\n    return 1\n",
               "isolation": "warm"}),
    )
    .await;
    deploy(
        &server,
        "acme",
        "burn",
        json!({"method": "GET", "route": "/burn", "script": "def handler():\n    while True:\n        pass\n",
               "limits": {"cpu_ms": 100}}),
    )
    .await;
    let auth = bearer(&server, "acme").await;
    for _ in 0..3 {
        assert_eq!(get(&server, "/acme/warm", &auth).await.status, 200);
    }
    let db_reply = get(&server, "/acme/db", &auth).await;
    assert_eq!(db_reply.status, 200);
    assert_eq!(
        get(&server, "/acme/burn", &auth).await.status,
        504,
        "the CPU limit"
    );
    assert_eq!(
        get(&server, "/no-such-tenant-x1/e", &auth).await.status,
        404
    );

    // Server-Timing says how long the sandbox and the database took.
    let timing = db_reply
        .header("server-timing")
        .expect("server-timing")
        .to_string();
    // Durations (`name;dur=ms`), and the peak memory as a description (`mem;desc=bytes`).
    let durations: Vec<f64> = timing
        .split(", ")
        .filter_map(|part| part.split("dur=").nth(1))
        .map(|ms| ms.parse().unwrap())
        .collect();
    assert!(
        timing.starts_with("sandbox;dur=") && timing.contains(", db;dur="),
        "{timing}"
    );
    assert!(
        timing.contains(", cpu;dur=") && timing.contains(", mem;desc="),
        "{timing}"
    );
    assert!(
        durations[1] > 0.0 && durations[1] <= durations[0],
        "{timing}"
    );

    assert_eq!(scrape(&server, "wrong").await.0, 401);
    assert_eq!(
        scrape(&server, ADMIN_KEY).await.0,
        401,
        "the metrics token, not the admin key"
    );
    let (status, text) = scrape(&server, "scrape-me").await;
    assert_eq!(status, 200);
    let count =
        |prefix: &str| sample(&text, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
    assert_eq!(
        count(r#"pubfn_requests_total{tenant="acme",endpoint="warm",status="200"}"#),
        3.0
    );
    assert_eq!(
        count(r#"pubfn_requests_total{tenant="acme",endpoint="burn",status="504"}"#),
        1.0
    );
    assert_eq!(
        count(r#"pubfn_requests_total{tenant="_unknown",endpoint="",status="404"}"#),
        1.0
    );
    assert!(
        !text.contains("no-such-tenant-x1"),
        "unknown names must not become labels"
    );
    assert_eq!(
        count(r#"pubfn_instances_total{tenant="acme",kind="warm"}"#),
        2.0
    );
    assert!(count(r#"pubfn_instances_total{tenant="acme",kind="cold"}"#) >= 2.0);
    assert_eq!(
        count(r#"pubfn_limit_hits_total{tenant="acme",kind="cpu"}"#),
        1.0
    );
    assert_eq!(
        count(r#"pubfn_request_duration_seconds_count{tenant="acme"}"#),
        5.0
    );
    assert_eq!(
        count(r#"pubfn_db_duration_seconds_count{tenant="acme"}"#),
        5.0
    );
    assert!(
        count(r#"pubfn_db_pool_connections{tenant="acme",database="dw_2",state="idle"}"#) >= 1.0
    );
    assert!(count("pubfn_instance_slots_max") > 0.0);
    assert!(text.contains("pubfn_warm_instances_idle"));
    // Nothing was dropped, and the operator can see that: the series exist before any drop.
    for queue in ["logs", "replays"] {
        assert_eq!(
            count(&format!(
                r#"pubfn_background_writes_dropped_total{{queue="{queue}"}}"#
            )),
            0.0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_with_the_request_id_and_no_secrets() {
    let db = fresh_database("telemetrylogs").await;
    let (server, lines) = Server::start_logging(Some(&db), &[], Some("info"));
    let script = r#"
import pq
def handler():
    secret = pq.get_secret('API_KEY')
    rows = pq.dbconnect('dw_2').fetch('dw_2', query='SELECT %s::text AS v', params=['param-canary-77'])
    print('handler output')
    return {'ok': len(secret) > 0 and rows[0]['v'] == 'param-canary-77'}
"#;
    tenant_with_endpoint(&server, "quiet", "e", "/e", script).await;
    seed(&server, "quiet").await;
    let set = admin(
        &server,
        "PUT",
        "/tenants/quiet/secrets/API_KEY",
        json!({"value": "secret-canary-55"}),
    )
    .await;
    assert_eq!(set.status, 200);
    let auth = bearer(&server, "quiet").await;
    let reply = request(
        "GET",
        &format!("{}/quiet/e?token=query-canary-33", server.base),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(reply.json(), json!({"ok": true}));
    let request_id = reply.header("x-request-id").unwrap().to_string();
    drop(server); // stops it; what it wrote to stderr reaches `lines` soon after
    let served_logged = |lines: &[String]| {
        lines
            .iter()
            .any(|line| line.contains(&request_id) && line.contains("served"))
    };
    common::eventually(
        "the request's 'served' line reaches stderr",
        std::time::Duration::from_secs(10),
        || async { served_logged(&lines.lock().unwrap()).then_some(()) },
    )
    .await;
    let lines = lines.lock().unwrap().clone();
    assert!(!lines.is_empty());
    let token = auth.trim_start_matches("Bearer ");
    for line in &lines {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            parsed["level"].is_string() && parsed["timestamp"].is_string(),
            "{line}"
        );
        for canary in [
            token,
            "secret-canary-55",
            "param-canary-77",
            "query-canary-33",
            ADMIN_KEY,
        ] {
            assert!(!line.contains(canary), "a log line holds {canary}: {line}");
        }
    }
    let served = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| {
            l["span"]["request_id"] == request_id.as_str() && l["fields"]["message"] == "served"
        })
        .unwrap_or_else(|| panic!("no line for request {request_id}:\n{}", lines.join("\n")));
    assert_eq!(served["fields"]["status"], 200);
    assert_eq!(served["fields"]["path"], "/quiet/e");
}
