//! The web console end to end in headless Chromium (Debian's `chromium`, driven by
//! playwright-core from tests/console, both installed by scripts/setup), and the attack of a
//! tenant's page on it.

#[path = "common/server.rs"]
mod common;

use std::process::Command;

use common::{Server, admin, fresh_database, token};
use serde_json::json;

fn check_tools() -> String {
    let e2e = format!("{}/tests/console", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&format!("{e2e}/node_modules/playwright-core")).exists(),
        "playwright-core is missing: run scripts/setup (it runs npm ci in tests/console)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: run scripts/setup (it installs Debian's chromium)"
    );
    e2e
}

/// A page registering a Service Worker for the whole origin, and the worker, which would
/// answer every request of the origin (the console's included) with the tenant's page.
const EVIL_PAGE: &str = r#"def handler():
    page = '<script>window.attempt = navigator.serviceWorker.register("/evil/sw.js", {scope: "/"});</script>'
    return page, 200, {'content-type': 'text/html'}
"#;
const EVIL_WORKER: &str = r#"def handler():
    worker = 'self.addEventListener("fetch", (e) => e.respondWith(new Response("owned by evil")));'
    return worker, 200, {'content-type': 'text/javascript', 'service-worker-allowed': '/'}
"#;

/// Runs the attack against a server started with `extra`; returns what the browser saw.
async fn service_worker_attack(name: &str, extra: &[&str]) -> serde_json::Value {
    let e2e = check_tools();
    let db = fresh_database(name).await;
    let server = Server::start(Some(&db), extra);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "evil"}))
            .await
            .status,
        201
    );
    for (endpoint, route, script) in [("page", "/page", EVIL_PAGE), ("sw", "/sw.js", EVIL_WORKER)] {
        common::deploy(
            &server,
            "evil",
            endpoint,
            json!({"method": "GET", "route": route, "script": script, "auth": "public"}),
        )
        .await;
    }
    let output = Command::new("node")
        .arg(format!("{e2e}/sw_attack.mjs"))
        .args([&server.base, &server.admin_base])
        .current_dir(&e2e)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}
{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn assert_console_untouched(seen: &serde_json::Value) {
    assert_eq!(
        seen["controlled"], false,
        "the console is served by the worker: {seen}"
    );
    assert_eq!(seen["registrations"], json!([]), "{seen}");
    assert_eq!(seen["dataRegistrations"], json!([]), "{seen}");
    assert_eq!(seen["signIn"], true, "the console itself loaded: {seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_service_worker_never_reaches_the_console() {
    // The console on its own listener: another origin altogether.
    let seen = service_worker_attack("swseparate", &["--admin-listen", "127.0.0.1:0"]).await;
    assert_console_untouched(&seen);
    // One origin for all (no --admin-listen): the tenant's page runs sandboxed, so its script
    // never runs...
    let seen = service_worker_attack("swshared", &[]).await;
    assert_eq!(seen["attempt"], "the page's script did not run", "{seen}");
    assert_console_untouched(&seen);
    // ...and with the sandbox turned off by the operator, the worker's scope still stops at
    // the tenant's path: its `service-worker-allowed: /` never reaches the browser.
    let seen = service_worker_attack("swnocsp", &["--tenant-csp", ""]).await;
    let attempt = seen["attempt"].as_str().unwrap();
    assert!(attempt.starts_with("refused"), "{seen}");
    assert_console_untouched(&seen);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_admin_builds_deploys_calls_and_rolls_back_in_the_browser() {
    let e2e = check_tools();
    let db = fresh_database("console").await;
    // The console on its own origin, as operators are told to run it.
    let server = Server::start(Some(&db), &["--admin-listen", "127.0.0.1:0"]);
    let created = admin(&server, "POST", "/tenants", json!({"name": "webshop"})).await;
    assert_eq!(created.status, 201);
    let admin_token = token(
        &server,
        "webshop",
        json!({"name": "console", "admin": true}),
    )
    .await;
    let screenshot = format!("{}/console.png", env!("CARGO_TARGET_TMPDIR"));
    let output = Command::new("node")
        .arg(format!("{e2e}/e2e.mjs"))
        .args([&server.admin_base, &admin_token, "webshop", &screenshot])
        .current_dir(&e2e)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("console e2e: passed"), "{stdout}");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a real screenshot"
    );
}
