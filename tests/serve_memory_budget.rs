//! The node's memory budget end to end: a real `pubfn serve` with a budget that holds only a
//! few tenants' snapshots releases idle tenants least recently used first, every call is still
//! answered, an evicted tenant's next call loads its compiled snapshot from disk, and
//! `/metrics` counts both.

#[path = "common/server.rs"]
mod common;

use std::time::Duration;

use common::{METRICS_ARGS, METRICS_TOKEN, Server, eventually, fresh_database, scrape};

const HELLO: &str = "def handler():\n    return {'tenant': request.path}\n";

/// A metric's value in the exposition (the first line naming it with these labels).
fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name_and_labels))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

/// Calls the tenant's endpoint; returns its `Server-Timing`.
async fn call(server: &Server, tenant: &str) -> String {
    let auth = common::token(server, tenant, serde_json::json!({"name": "c"})).await;
    let reply = common::request(
        "GET",
        &format!("{}/{tenant}/hi", server.base),
        &[("authorization", &format!("Bearer {auth}"))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{tenant}: {:?}", reply.body);
    reply.header("server-timing").unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_tenants_are_released_under_the_budget_and_reload_from_disk() {
    const TENANTS: usize = 8;
    let db = fresh_database("memory_budget").await;
    // First without a budget worth the name: the tenants are made (their snapshots built and
    // saved), then a second server loads them from disk, as the budgeted server will, and
    // says how much one more loaded tenant costs here. Measured on the server that builds
    // them, the cost included what the builds left in the allocator, and a budget of "three
    // tenants" sometimes held all eight (a clean-clone CI run found no eviction).
    {
        let mut args = METRICS_ARGS.to_vec();
        args.extend(["--sandbox-memory-budget", "1TiB"]);
        let server = Server::start(Some(&db), &args);
        for i in 0..TENANTS {
            let tenant = format!("budget{i}");
            common::tenant_with_endpoint(&server, &tenant, "hi", "/hi", HELLO).await;
            call(&server, &tenant).await;
        }
    }
    let (baseline, per_tenant) = {
        let mut args = METRICS_ARGS.to_vec();
        args.extend(["--sandbox-memory-budget", "1TiB"]);
        let server = Server::start(Some(&db), &args);
        let resident = |text: &str| metric(text, "pubfn_process_resident_bytes ");
        let before = resident(&scrape(&server, METRICS_TOKEN).await.1);
        for i in 0..TENANTS {
            let timing = call(&server, &format!("budget{i}")).await;
            assert!(timing.contains("snapshot;desc=disk;dur="), "{timing}");
        }
        let after = resident(&scrape(&server, METRICS_TOKEN).await.1);
        (before, (after - before) / TENANTS as f64)
    };
    assert!(per_tenant > 1e6, "a tenant costs {per_tenant} bytes?");

    // Then with room for about three tenants' snapshots above the server's own memory.
    let budget = (baseline + 3.0 * per_tenant) as u64;
    let mut args = METRICS_ARGS.to_vec();
    let budget_arg = budget.to_string();
    args.extend(["--sandbox-memory-budget", budget_arg.as_str()]);
    let server = Server::start(Some(&db), &args);
    let mut reloaded = 0;
    for round in 0..2 {
        for i in 0..TENANTS {
            let timing = call(&server, &format!("budget{i}")).await;
            // Each call of the first round loads its tenant's snapshot; in the second, those
            // of tenants released meanwhile do, and say so.
            if round == 0 {
                assert!(timing.contains("snapshot;desc=disk;dur="), "{timing}");
            } else if timing.contains("snapshot;desc=disk") {
                reloaded += 1;
            }
            // Idle for the budget: a tenant used within the last half second is kept.
            if round == 1 {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        }
    }
    assert!(
        reloaded > 0,
        "no call of the second round reloaded its snapshot \
         (baseline {baseline} bytes, {per_tenant} per tenant, budget {budget})"
    );
    let text = eventually(
        "evictions, and resident memory back under the budget",
        Duration::from_secs(60),
        || async {
            let text = scrape(&server, METRICS_TOKEN).await.1;
            let evictions = metric(&text, "pubfn_tenant_evictions_total ");
            let resident = metric(&text, "pubfn_process_resident_bytes ");
            (evictions >= 1.0 && resident <= budget as f64).then_some(text)
        },
    )
    .await;
    assert_eq!(
        metric(&text, "pubfn_memory_budget_bytes "),
        budget as f64,
        "{text}"
    );
    // The snapshots were built by the first server: this one only ever loads them from disk,
    // and more often than once per tenant, since evicted tenants were called again.
    assert_eq!(
        metric(&text, "pubfn_snapshot_loads_total{source=\"built\"} "),
        0.0
    );
    let disk = metric(&text, "pubfn_snapshot_loads_total{source=\"disk\"} ");
    assert!(disk > TENANTS as f64, "{disk} loads from disk\n{text}");
}
