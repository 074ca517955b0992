//! The web console end to end in headless Chromium (Debian's `chromium`, driven by
//! playwright-core from tests/console, both installed by scripts/setup).

#[path = "common/server.rs"]
mod common;

use std::process::Command;

use common::{Server, admin, fresh_database, token};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_admin_builds_deploys_calls_and_rolls_back_in_the_browser() {
    let root = env!("CARGO_MANIFEST_DIR");
    let e2e = format!("{root}/tests/console");
    assert!(
        std::path::Path::new(&format!("{e2e}/node_modules/playwright-core")).exists(),
        "playwright-core is missing: run scripts/setup (it runs npm ci in tests/console)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: run scripts/setup (it installs Debian's chromium)"
    );
    let db = fresh_database("console").await;
    let server = Server::start(Some(&db), &[]);
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
        .args([&server.base, &admin_token, "webshop", &screenshot])
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
