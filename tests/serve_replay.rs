//! Replay of a failed call through the real server and the real CLI: a handler that fails on
//! one row of its tenant's table is recorded (sealed, without the secret it read or the
//! caller's token signature), and `pubfn replay` reproduces the same traceback, randomness and
//! clock after the row was deleted; a fixed script passes on the same recorded rows; a script
//! asking for something else is told it diverged. Who may read recordings and secrets.

#[path = "common/server.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{ADMIN_KEY, Server, admin, deploy, fresh_database, request, token};
use serde_json::{Value, json};

const SECRET: &str = "k3y-that-must-never-be-recorded";

/// Fails on the account whose revenue is NULL; prints what it drew from the OS and the clock.
const FAILING: &str = "import os, time, pq\n\
def handler():\n    key = pq.get_secret('api_key')\n    \
rows = pq.dbconnect('dw').fetch('dw', 'public', 'accounts', order_by='id')\n    \
print('entropy', os.urandom(8).hex(), 'clock', repr(time.time()))\n    \
total = 0.0\n    for row in rows:\n        total += float(row['revenue']) / len(key)\n    \
return {'total': total}\n";

/// The fix: an account without revenue counts as none.
const FIXED: &str = "import pq\n\
def handler():\n    key = pq.get_secret('api_key')\n    \
rows = pq.dbconnect('dw').fetch('dw', 'public', 'accounts', order_by='id')\n    \
total = sum(float(row['revenue'] or 0) for row in rows) / len(key)\n    \
return {'total': total, 'rows': len(rows)}\n";

/// Asks for a table the failed call never read.
const DIVERGING: &str = "import pq\n\
def handler():\n    return pq.dbconnect('dw').fetch('dw', 'public', 'other')\n";

fn replay(server: &Server, key: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pubfn-cache");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pubfn"))
        .arg("replay")
        .args(args)
        .args(["--server", &server.base])
        .arg("--runtime")
        .arg(common::runtime_dir())
        .env("PUBFN_ADMIN_KEY", key)
        .env("PUBFN_CACHE_DIR", cache)
        .env("PUBFN_LOG", "warn")
        .output()
        .expect("running pubfn replay");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `(entropy, clock)` a FAILING run printed.
fn drawn(output: &str) -> (String, f64) {
    let line = output
        .lines()
        .find(|l| l.starts_with("entropy "))
        .unwrap_or_else(|| panic!("no entropy line in {output:?}"));
    let words: Vec<&str> = line.split(' ').collect();
    (words[1].to_string(), words[3].parse().unwrap())
}

async fn sql(server: &Server, statement: &str) {
    let reply = admin(
        server,
        "POST",
        "/tenants/acme/databases/dw/sql",
        json!({"sql": statement}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_call_replays_its_traceback_and_a_fix_passes_on_the_same_rows() {
    let db = fresh_database("replay").await;
    let server = Server::start(Some(&db), &[]);
    for tenant in ["acme", "other"] {
        let created = admin(&server, "POST", "/tenants", json!({"name": tenant})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let created = admin(&server, "PUT", "/tenants/acme/databases/dw", json!({})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    sql(
        &server,
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, revenue numeric);
         INSERT INTO accounts VALUES (1, 'Acme', 100), (2, 'Broken', NULL), (3, 'Initech', 50);",
    )
    .await;
    let set = admin(
        &server,
        "PUT",
        "/tenants/acme/secrets/api_key",
        json!({"value": SECRET}),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    deploy(
        &server,
        "acme",
        "report",
        json!({"method": "GET", "route": "/report", "script": FAILING}),
    )
    .await;
    let client = token(&server, "acme", json!({"name": "client"})).await;
    let signature = client.rsplit('.').next().unwrap().to_string();
    let auth = format!("Bearer {client}");
    let url = format!("{}/acme/report", server.base);

    // The call fails on row 2; a successful call of another endpoint is not recorded.
    let failed = request("GET", &url, &[("authorization", &auth)], b"").await;
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    let request_id = failed.header("x-request-id").unwrap().to_string();
    let log = common::eventually(
        "the failed call's log entry",
        Duration::from_secs(10),
        || async {
            let entries = admin(
                &server,
                "GET",
                "/tenants/acme/endpoints/report/logs",
                json!(null),
            )
            .await
            .json();
            entries.as_array().unwrap().first().cloned()
        },
    )
    .await;
    assert_eq!(log["request_id"], request_id.as_str());
    let traceback = log["traceback"].as_str().unwrap().to_string();
    assert!(traceback.contains("TypeError"), "{traceback}");
    let (entropy, clock) = drawn(log["output"].as_str().unwrap());

    let listed = common::eventually("the recording", Duration::from_secs(10), || async {
        let listed = admin(&server, "GET", "/tenants/acme/replays", json!(null)).await;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        let listed = listed.json();
        (!listed.as_array().unwrap().is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed[0]["request_id"], request_id.as_str());
    assert_eq!(listed[0]["status"], 500);
    // A secret, a connect and a fetch.
    assert_eq!(listed[0]["calls"], 3);

    // What is kept: the rows, the secret's name but never its value, the token's claims but
    // not its signature; sealed in the table.
    let recording = admin(
        &server,
        "GET",
        &format!("/tenants/acme/replays/{request_id}"),
        json!(null),
    )
    .await;
    assert_eq!(recording.status, 200, "{:?}", recording.body);
    let text = String::from_utf8_lossy(&recording.body).into_owned();
    assert!(!text.contains(SECRET), "the secret's value was recorded");
    assert!(
        !text.contains(&signature),
        "the token's signature was recorded"
    );
    assert!(text.contains("api_key"), "{text}");
    let recording: Value = recording.json();
    assert_eq!(recording["traceback"], traceback.as_str());
    let sealed = common::connect(&db)
        .await
        .query_one(
            "SELECT sealed FROM pubfn.replays WHERE request_id = $1",
            &[&request_id],
        )
        .await
        .unwrap()
        .get::<_, Vec<u8>>(0);
    assert!(
        !String::from_utf8_lossy(&sealed).contains("Broken"),
        "the recording is not sealed at rest"
    );

    // The row goes; the endpoint now works against the database.
    sql(&server, "DELETE FROM accounts WHERE id = 2").await;
    let works = request("GET", &url, &[("authorization", &auth)], b"").await;
    assert_eq!(works.status, 200, "{:?}", works.body);
    // Later than the recorded call by more than the slack allowed below.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A tenant admin replays it: the secret comes from the server again, the rows from the
    // recording; the same traceback, the same random bytes, the recorded time.
    let tenant_admin = token(&server, "acme", json!({"name": "dev", "admin": true})).await;
    let (code, out, err) = replay(&server, &tenant_admin, &["--tenant", "acme", &request_id]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("HTTP 500"), "{out}");
    assert!(
        out.contains(traceback.trim_end()),
        "{out}\n--- expected ---\n{traceback}"
    );
    let (replayed_entropy, replayed_clock) = drawn(&err);
    assert_eq!(replayed_entropy, entropy, "os.urandom differs under replay");
    assert!(
        (replayed_clock - clock).abs() < 2.5,
        "time.time() under replay {replayed_clock}, recorded {clock}"
    );

    // The fix, on the same recorded rows (three of them: the deleted one too).
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.py");
    std::fs::write(&fixed, FIXED).unwrap();
    let fixed = fixed.to_str().unwrap();
    let (code, out, err) = replay(
        &server,
        ADMIN_KEY,
        &[
            "--tenant",
            "acme",
            &request_id,
            "--script",
            fixed,
            "--secret",
            &format!("api_key={SECRET}"),
        ],
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("HTTP 200"), "{out}");
    let body = out.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["rows"], 3, "{out}");
    assert_eq!(body["total"], 150.0 / SECRET.len() as f64, "{out}");

    // The operator may read the recording but not the tenant's secrets: without --secret the
    // replay says so and does not run.
    let (code, _, err) = replay(&server, ADMIN_KEY, &["--tenant", "acme", &request_id]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--secret"), "{err}");
    let secrets = admin(
        &server,
        "GET",
        &format!("/tenants/acme/replays/{request_id}/secrets"),
        json!(null),
    )
    .await;
    assert_eq!(secrets.status, 403, "{:?}", secrets.body);

    // A script asking for what the recording does not hold is told so.
    let diverging = dir.path().join("diverging.py");
    std::fs::write(&diverging, DIVERGING).unwrap();
    let (code, _, err) = replay(
        &server,
        &tenant_admin,
        &[
            "--tenant",
            "acme",
            &request_id,
            "--script",
            diverging.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("diverged") && err.contains("other"), "{err}");

    // Other tenants' admins see nothing; an unknown or successful request has no recording.
    let stranger = token(&server, "other", json!({"name": "adm", "admin": true})).await;
    let peek = request(
        "GET",
        &format!(
            "{}/admin/v1/tenants/acme/replays/{request_id}",
            server.admin_base
        ),
        &[("authorization", &format!("Bearer {stranger}"))],
        b"",
    )
    .await;
    assert_eq!(peek.status, 403, "{:?}", peek.body);
    let ok_id = works.header("x-request-id").unwrap();
    for id in [ok_id, "no-such-request"] {
        let missing = admin(
            &server,
            "GET",
            &format!("/tenants/acme/replays/{id}"),
            json!(null),
        )
        .await;
        assert_eq!(missing.status, 404, "{:?}", missing.body);
        assert_eq!(
            missing.header("content-type"),
            Some("application/problem+json")
        );
    }
}

/// Fails inside the tenant's own module: a replay needs that module to reproduce it.
const HELPERS: &str =
    "def check(n):\n    if n > 2:\n        raise ValueError(f'too many: {n}')\n    return n\n";
const USES_HELPERS: &str = "import helpers\ndef handler():\n    return {'n': helpers.check(3)}\n";
const USES_HELPERS_FIXED: &str =
    "import helpers\ndef handler():\n    return {'n': helpers.check(2)}\n";

/// Waits for `tenant`'s newest recording and returns its request id.
async fn recorded(server: &Server, tenant: &str) -> String {
    let path = format!("/tenants/{tenant}/replays");
    let listed = common::eventually("the recording", Duration::from_secs(10), || async {
        let listed = admin(server, "GET", &path, json!(null)).await.json();
        listed.as_array().unwrap().first().cloned()
    })
    .await;
    listed["request_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_replays_with_the_uploaded_packages_it_ran_with() {
    let db = fresh_database("replaypackages").await;
    let server = Server::start(Some(&db), &[]);
    for tenant in ["pk", "plain"] {
        let created = admin(&server, "POST", "/tenants", json!({"name": tenant})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let put = admin(
        &server,
        "PUT",
        "/tenants/pk/modules/helpers",
        json!({"source": HELPERS}),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    deploy(
        &server,
        "pk",
        "count",
        json!({"method": "GET", "route": "/count", "script": USES_HELPERS, "auth": "public"}),
    )
    .await;
    let failed = request("GET", &format!("{}/pk/count", server.base), &[], b"").await;
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    let request_id = recorded(&server, "pk").await;
    assert_eq!(failed.header("x-request-id"), Some(request_id.as_str()));

    // The recording names its package set; the set comes whole, the module's source in it.
    let path = format!("/tenants/pk/replays/{request_id}");
    let recording = admin(&server, "GET", &path, json!(null)).await.json();
    assert_eq!(recording["uploaded_packages"], true, "{recording}");
    let hash = recording["package_set"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64, "{hash}");
    let set = admin(&server, "GET", &format!("{path}/packages"), json!(null)).await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let set = set.json();
    assert_eq!(set["hash"], hash.as_str());
    assert!(set["manifest"]["modules"]["helpers"].is_object(), "{set}");
    assert_eq!(set["blobs"].as_object().unwrap().len(), 1, "{set}");

    // The replay installs that set: the failure inside the module reproduces, and a fix that
    // calls it differently passes.
    let (code, out, err) = replay(&server, ADMIN_KEY, &["--tenant", "pk", &request_id]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("helpers.py"), "{out}");
    assert!(out.contains("ValueError: too many: 3"), "{out}");
    assert!(!err.contains("preload list"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.py");
    std::fs::write(&fixed, USES_HELPERS_FIXED).unwrap();
    let (code, out, err) = replay(
        &server,
        ADMIN_KEY,
        &[
            "--tenant",
            "pk",
            &request_id,
            "--script",
            fixed.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(r#"{"n": 2}"#) || out.contains(r#"{"n":2}"#),
        "{out}"
    );

    // A saved recording is replayed without asking for its packages, and says so.
    let saved = dir.path().join("recording.json");
    std::fs::write(&saved, recording.to_string()).unwrap();
    let (code, out, err) = replay(
        &server,
        ADMIN_KEY,
        &[
            "--tenant",
            "pk",
            &request_id,
            "--recording",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("only its preload list"), "{err}");
    assert!(out.contains("ModuleNotFoundError"), "{out}");

    // A call that ran without uploaded packages has none to give.
    deploy(
        &server,
        "plain",
        "boom",
        json!({"method": "GET", "route": "/boom", "auth": "public",
            "script": "def handler():\n    raise RuntimeError('boom')\n"}),
    )
    .await;
    let failed = request("GET", &format!("{}/plain/boom", server.base), &[], b"").await;
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    let plain_id = recorded(&server, "plain").await;
    let none = admin(
        &server,
        "GET",
        &format!("/tenants/plain/replays/{plain_id}/packages"),
        json!(null),
    )
    .await;
    assert_eq!(none.status, 404, "{:?}", none.body);
    assert_eq!(
        none.header("content-type"),
        Some("application/problem+json")
    );
}
