//! A throwaway PostgreSQL and real `pubfn serve` processes on 127.0.0.1, with a small HTTP
//! client, for end-to-end tests.

#![allow(dead_code)]

#[path = "runtime.rs"]
mod runtime;
pub use runtime::runtime_dir;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use pubfn::db::LocalCluster;

/// The admin key every test server uses.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// A temporary directory as `mktemp -d` makes it: mode 0700, this user's alone. A private
/// cluster inside it is reached by its own user (`postgres`, when the tests run as root)
/// through an ACL entry pubfn adds.
pub fn private_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// The test binary's PostgreSQL cluster, started once and stopped when the process exits.
pub fn cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<(tempfile::TempDir, LocalCluster)> = OnceLock::new();
    &CLUSTER
        .get_or_init(|| {
            let dir = private_tempdir("pubfn-pg-");
            let cluster = LocalCluster::start(&dir.path().join("pg")).expect("starting PostgreSQL");
            (dir, cluster)
        })
        .1
}

/// A fresh, empty database on the test cluster; returns its URL.
pub async fn fresh_database(name: &str) -> String {
    let (client, connection) = cluster()
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    cluster().url(name)
}

/// A running `pubfn serve`.
pub struct Server {
    pub child: Child,
    /// The data plane's base URL (everything, without `--admin-listen`).
    pub base: String,
    /// The admin listener's base URL: `base` unless started with `--admin-listen`.
    pub admin_base: String,
    /// What the server printed before it listened (the demo's token, with the embedded
    /// cluster).
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `pubfn serve` on a free port of 127.0.0.1 with `extra` arguments.
    pub fn start(database_url: Option<&str>, extra: &[&str]) -> Server {
        Self::start_logging(database_url, extra, None).0
    }

    /// Starts `pubfn serve` like [`Server::start`]; with `log_filter`, its stderr is collected
    /// (JSON lines at that `PUBFN_LOG` filter) instead of passed through.
    pub fn start_logging(
        database_url: Option<&str>,
        extra: &[&str],
        log_filter: Option<&str>,
    ) -> (Server, Arc<Mutex<Vec<String>>>) {
        let cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pubfn-cache");
        Self::spawn(database_url, "127.0.0.1:0", &cache_dir, extra, log_filter)
    }

    /// A node of a multi-node deployment: listening on `listen` (so that it can be restarted
    /// at the same address) with a cache directory of its own (so that what it loaded can be
    /// told apart from what other nodes loaded).
    pub fn start_node(
        database_url: &str,
        listen: &str,
        cache_dir: &Path,
        extra: &[&str],
    ) -> Server {
        Self::spawn(Some(database_url), listen, cache_dir, extra, None).0
    }

    fn spawn(
        database_url: Option<&str>,
        listen: &str,
        cache_dir: &Path,
        extra: &[&str],
        log_filter: Option<&str>,
    ) -> (Server, Arc<Mutex<Vec<String>>>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pubfn"));
        command
            .arg("serve")
            .args(["--listen", listen])
            .arg("--runtime")
            .arg(runtime_dir());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        command
            .args(extra)
            .env("PUBFN_ADMIN_KEY", ADMIN_KEY)
            .env("PUBFN_SEALING_KEY_FILE", sealing_key_file())
            .env("PUBFN_CACHE_DIR", cache_dir)
            .env("PUBFN_LOG", log_filter.unwrap_or("warn"))
            .stdout(Stdio::piped())
            .stderr(if log_filter.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        if log_filter.is_some() {
            command.args(["--log-format", "json"]);
        }
        let mut child = command.spawn().expect("starting pubfn serve");
        let collected = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let sink = collected.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut banner, mut admin_base) = (Vec::new(), None);
        let base = loop {
            let line = lines
                .next()
                .expect("pubfn serve exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("pubfn listening on ") {
                break addr.trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("pubfn admin listening on ") {
                admin_base = Some(addr.trim().to_string());
            }
            banner.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let admin_base = admin_base.unwrap_or_else(|| base.clone());
        (
            Server {
                child,
                base,
                admin_base,
                banner,
            },
            collected,
        )
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_request(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// [`request`], with a failure to connect, or a connection that ends before the whole
/// response, as an error (a node that goes away mid-request).
pub async fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str());
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        builder = builder.header("host", authority.as_str());
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    // A hang guard, not a latency check: a first snapshot of the pandas flavour compiles a
    // 31 MB interpreter, which takes minutes on a loaded 2-core machine.
    let response = tokio::time::timeout(Duration::from_secs(240), sender.send_request(request))
        .await
        .expect("response in time")
        .map_err(|e| format!("request: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Runs the `pubfn` CLI against `server` with the operator key and `env`: whether it
/// succeeded, its stdout and its stderr.
pub fn cli(server: &Server, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pubfn"))
        .args(args)
        .args(["--server", &server.base])
        .env("PUBFN_ADMIN_KEY", ADMIN_KEY)
        .envs(env.iter().copied())
        .output()
        .expect("running pubfn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An admin API call with the operator key.
pub async fn admin(server: &Server, method: &str, path: &str, body: serde_json::Value) -> Reply {
    let auth = format!("Bearer {ADMIN_KEY}");
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    request(
        method,
        &format!("{}/admin/v1{path}", server.admin_base),
        &[("authorization", &auth)],
        &body,
    )
    .await
}

/// Creates a tenant and deploys `script` as `GET /{route}` named `name`.
pub async fn tenant_with_endpoint(
    server: &Server,
    tenant: &str,
    name: &str,
    route: &str,
    script: &str,
) {
    let reply = admin(
        server,
        "POST",
        "/tenants",
        serde_json::json!({"name": tenant}),
    )
    .await;
    assert!(reply.status == 201 || reply.status == 409, "{reply:?}");
    deploy(
        server,
        tenant,
        name,
        serde_json::json!({"method": "GET", "route": route, "script": script}),
    )
    .await;
}

/// Deploys an endpoint; panics unless it succeeds.
pub async fn deploy(
    server: &Server,
    tenant: &str,
    name: &str,
    spec: serde_json::Value,
) -> serde_json::Value {
    let reply = admin(
        server,
        "PUT",
        &format!("/tenants/{tenant}/endpoints/{name}"),
        spec,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}

/// A fresh data-plane token of `tenant`.
pub async fn token(server: &Server, tenant: &str, spec: serde_json::Value) -> String {
    let reply = admin(server, "POST", &format!("/tenants/{tenant}/tokens"), spec).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.json()["token"].as_str().unwrap().to_string()
}

/// A connection to a PostgreSQL URL.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The sealing key every test server uses.
pub fn sealing_key_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sealing.key")
}

/// The tenant's JWT secret, read from the metadata database and opened with the test servers'
/// sealing key: what an attacker holding both would have (to forge tokens).
pub async fn tenant_secret(database_url: &str, tenant: &str) -> Vec<u8> {
    let sealed: Vec<u8> = connect(database_url)
        .await
        .query_one(
            "SELECT jwt_sealed FROM pubfn.tenants WHERE name = $1",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    pubfn::control::SealingKey::load_or_create(&sealing_key_file())
        .unwrap()
        .open(&sealed, &format!("jwt {tenant}"))
        .unwrap()
}

/// Polls `check` every 50 ms until it gives `Some`, and returns that; panics naming `what`
/// once `limit` has passed. Every test that waits for the server waits through this.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Repeats a GET until it answers `status`; panics with `what` after `limit`.
pub async fn wait_for_status(url: &str, auth: &str, status: u16, limit: Duration, what: &str) {
    eventually(what, limit, || async {
        let reply = request("GET", url, &[("authorization", auth)], b"").await;
        (reply.status == status).then_some(())
    })
    .await
}

/// The metrics token of servers started with [`METRICS_ARGS`].
pub const METRICS_TOKEN: &str = "test-metrics-token";
/// Arguments that let a test read `/metrics`.
pub const METRICS_ARGS: [&str; 2] = ["--metrics-token", METRICS_TOKEN];

/// `/metrics` of `server`, read with `token`: the status and the text.
pub async fn scrape(server: &Server, token: &str) -> (u16, String) {
    let reply = request(
        "GET",
        &format!("{}/metrics", server.admin_base),
        &[("authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

/// Waits until `server` (started with [`METRICS_ARGS`]) has at least `n` instances running or
/// idle: a request sent before is then inside the sandbox, past its admission checks.
pub async fn wait_for_instances(server: &Server, n: u64) {
    let what = format!("{n} instances running or idle");
    eventually(&what, Duration::from_secs(30), || async {
        let (status, text) = scrape(server, METRICS_TOKEN).await;
        assert_eq!(status, 200, "reading /metrics");
        let in_use = text
            .lines()
            .find(|line| line.starts_with("pubfn_instance_slots_in_use "))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .expect("pubfn_instance_slots_in_use in /metrics");
        (in_use >= n as f64).then_some(())
    })
    .await
}
