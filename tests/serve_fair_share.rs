//! Fair sharing between tenants: one tenant burning CPU in every request, beyond its
//! concurrency cap, must not push another tenant's median latency above twice its idle value,
//! with a fresh instance per request (strict) or a reused one (warm).
//!
//! Both medians come from the same run, so the ratio holds on a noisy machine; nothing here
//! compares against a fixed time. The probes alternate between idle and loaded rounds and come
//! in short bursts spread out in time, so that a passing disturbance (the VM descheduled, a
//! checkpoint) lands on a few samples of both sides rather than on the whole of one: a probe
//! takes about a millisecond, and 80 back to back once fit inside one 120 ms hiccup. Within a
//! burst the calls are back to back: a pause before every call would let the idle cores halt
//! and make every idle call pay for waking them, which is not the latency being compared.

#[path = "common/server.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, admin, request, tenant_with_endpoint, token};
use serde_json::json;
use tokio::task::JoinHandle;

/// Pure-Python work, no host calls: roughly 100 ms of CPU per request here.
const BURN: &str = "def handler():\n    n = 0\n    for i in range(1_500_000):\n        n += i\n    return {'n': n}\n";
const HELLO: &str = "def handler():\n    return {'hello': 'world'}\n";
/// The hog's cap, and more clients than that, so it also runs into the cap.
const HOG_CAP: usize = 8;
const HOG_CLIENTS: usize = 12;
/// Idle and loaded rounds each, alternating.
const ROUNDS: usize = 2;
/// Bursts per round, and probes of each kind per burst.
const BURSTS: usize = 4;
const BURST: usize = 10;
/// The pause between bursts, which spreads a round over about a quarter of a second.
const BURST_SPACING: Duration = Duration::from_millis(50);

/// The probe's two endpoints, and the latencies seen on each.
struct Probe {
    auth: String,
    strict_url: String,
    warm_url: String,
    strict: Vec<Duration>,
    warm: Vec<Duration>,
}

impl Probe {
    /// One round: bursts of strict and warm calls alternately, spaced out.
    async fn round(&mut self) {
        for _ in 0..BURSTS {
            tokio::time::sleep(BURST_SPACING).await;
            for _ in 0..BURST {
                self.strict
                    .push(timed_call(&self.strict_url, &self.auth).await);
                self.warm.push(timed_call(&self.warm_url, &self.auth).await);
            }
        }
    }
}

async fn timed_call(url: &str, auth: &str) -> Duration {
    let start = Instant::now();
    let reply = request("GET", url, &[("authorization", auth)], b"").await;
    let elapsed = start.elapsed();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The hog's clients, calling until told to stop; counts served and capped calls.
struct Hog {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    capped: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<()>>,
}

impl Hog {
    fn start(url: &str, auth: &str, served: &Arc<AtomicUsize>, capped: &Arc<AtomicUsize>) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..HOG_CLIENTS)
            .map(|_| {
                let (stop, served, capped) = (stop.clone(), served.clone(), capped.clone());
                let (url, auth) = (url.to_string(), auth.to_string());
                tokio::spawn(async move {
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
                })
            })
            .collect();
        Hog {
            stop,
            served: served.clone(),
            capped: capped.clone(),
            clients,
        }
    }

    /// Stops the clients and waits until none has a call in flight.
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
        let _ = (self.served, self.capped);
    }
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
    let hog_url = format!("{}/hog/burn", server.base);
    let probe_auth = format!(
        "Bearer {}",
        token(&server, "probe", json!({"name": "c"})).await
    );
    let new_probe = || Probe {
        auth: probe_auth.clone(),
        strict_url: format!("{}/probe/hello", server.base),
        warm_url: format!("{}/probe/hello-warm", server.base),
        strict: Vec::new(),
        warm: Vec::new(),
    };
    // Both snapshots built and every path warmed before anything is measured.
    assert_eq!(
        request("GET", &hog_url, &[("authorization", &hog_auth)], b"")
            .await
            .status,
        200
    );
    new_probe().round().await;

    let (mut idle, mut loaded) = (new_probe(), new_probe());
    let (served, capped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..ROUNDS {
        idle.round().await;
        let hog = Hog::start(&hog_url, &hog_auth, &served, &capped);
        // Let the hog fill its cap before probing.
        tokio::time::sleep(Duration::from_secs(1)).await;
        loaded.round().await;
        hog.stop().await;
    }

    let (served, capped) = (
        served.load(Ordering::Relaxed),
        capped.load(Ordering::Relaxed),
    );
    let (idle_strict, idle_warm) = (median(idle.strict), median(idle.warm));
    let (loaded_strict, loaded_warm) = (median(loaded.strict), median(loaded.warm));
    eprintln!(
        "probe median idle {idle_strict:?}, loaded {loaded_strict:?}; warm: idle {idle_warm:?}, \
         loaded {loaded_warm:?}; hog served {served}, capped {capped}"
    );
    assert!(served >= HOG_CAP, "the hog barely ran: {served} requests");
    assert!(capped > 0, "the hog never reached its cap");
    assert!(
        loaded_strict <= idle_strict * 2,
        "strict probe median {loaded_strict:?} under load against {idle_strict:?} idle"
    );
    assert!(
        loaded_warm <= idle_warm * 2,
        "warm probe median {loaded_warm:?} under load against {idle_warm:?} idle"
    );
}
