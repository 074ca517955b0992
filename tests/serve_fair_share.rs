//! Fair sharing between tenants: one tenant burning CPU in every request, beyond its
//! concurrency cap, must not push another tenant's median latency above twice its idle value,
//! with a fresh instance per request (strict) or a reused one (warm).
//!
//! Both medians come from two phases of one run (idle, then loaded), so the ratio holds on a
//! noisy machine; nothing here compares against a fixed time.

#[path = "common/server.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, admin, request, tenant_with_endpoint, token};
use serde_json::json;

/// Pure-Python work, no host calls: roughly 100 ms of CPU per request here.
const BURN: &str = "def handler():\n    n = 0\n    for i in range(1_500_000):\n        n += i\n    return {'n': n}\n";
const HELLO: &str = "def handler():\n    return {'hello': 'world'}\n";
/// The hog's cap, and more clients than that, so it also runs into the cap.
const HOG_CAP: usize = 8;
const HOG_CLIENTS: usize = 12;
const PROBES: usize = 80;

async fn median_latency(url: &str, auth: &str) -> Duration {
    let mut samples = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let start = Instant::now();
        let reply = request("GET", url, &[("authorization", auth)], b"").await;
        samples.push(start.elapsed());
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    samples.sort();
    samples[PROBES / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_burning_cpu_at_its_cap_does_not_slow_another_tenant_down() {
    let db = common::fresh_database("fairshare").await;
    let server = Server::start(Some(&db), &[]);
    let reply = admin(
        &server,
        "POST",
        "/tenants",
        json!({"name": "hog", "limits": {"max_concurrency": HOG_CAP}}),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    tenant_with_endpoint(&server, "hog", "burn", "/burn", BURN).await;
    tenant_with_endpoint(&server, "probe", "hello", "/hello", HELLO).await;
    common::deploy(
        &server,
        "probe",
        "hello-warm",
        json!({"method": "GET", "route": "/hello-warm", "script": HELLO, "isolation": "warm"}),
    )
    .await;
    let hog_auth = format!(
        "Bearer {}",
        token(&server, "hog", json!({"name": "c"})).await
    );
    let probe_auth = format!(
        "Bearer {}",
        token(&server, "probe", json!({"name": "c"})).await
    );
    let (hog_url, probe_url, warm_url) = (
        format!("{}/hog/burn", server.base),
        format!("{}/probe/hello", server.base),
        format!("{}/probe/hello-warm", server.base),
    );
    // Both snapshots built and every path warmed before anything is measured.
    assert_eq!(
        request("GET", &hog_url, &[("authorization", &hog_auth)], b"")
            .await
            .status,
        200
    );
    median_latency(&probe_url, &probe_auth).await;
    median_latency(&warm_url, &probe_auth).await;

    let idle = median_latency(&probe_url, &probe_auth).await;
    let idle_warm = median_latency(&warm_url, &probe_auth).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (served, capped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..HOG_CLIENTS {
        let (stop, served, capped) = (stop.clone(), served.clone(), capped.clone());
        let (url, auth) = (hog_url.clone(), hog_auth.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match request("GET", &url, &[("authorization", &auth)], b"")
                    .await
                    .status
                {
                    200 => served.fetch_add(1, Ordering::Relaxed),
                    429 => {
                        // A client told to back off does, briefly.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        capped.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("the hog got {other}"),
                };
            }
        }));
    }
    // Let the hog fill its cap before probing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = median_latency(&probe_url, &probe_auth).await;
    let loaded_warm = median_latency(&warm_url, &probe_auth).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let (served, capped) = (
        served.load(Ordering::Relaxed),
        capped.load(Ordering::Relaxed),
    );
    eprintln!(
        "probe median idle {idle:?}, loaded {loaded:?}; warm: idle {idle_warm:?}, loaded \
         {loaded_warm:?}; hog served {served}, capped {capped}"
    );
    assert!(served >= HOG_CAP, "the hog barely ran: {served} requests");
    assert!(capped > 0, "the hog never reached its cap");
    assert!(
        loaded <= idle * 2,
        "strict probe median {loaded:?} under load against {idle:?} idle"
    );
    assert!(
        loaded_warm <= idle_warm * 2,
        "warm probe median {loaded_warm:?} under load against {idle_warm:?} idle"
    );
}
