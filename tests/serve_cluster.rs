//! Three `pubfn serve` nodes on one PostgreSQL behind HAProxy, configured by the shipped
//! `deploy/haproxy/haproxy.cfg` (consistent hashing on the tenant). While all nodes are up,
//! each tenant's snapshot lives on one node only; a node killed with SIGKILL mid-load and
//! restarted costs clients that retry nothing (every request answered, every acknowledged write
//! in the tenant's table); a deploy reaches every node.

#[path = "common/server.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ADMIN_KEY, Server, fresh_database, try_request};
use serde_json::json;
use sha2::Digest;

const TENANTS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

/// Inserts the request's id into the tenant's own table; a retried request inserts nothing
/// new, so the table holds each acknowledged id exactly once.
const HIT: &str = "import pq\n\
def handler():\n    \
    rid = request.args['id']\n    \
    pq.dbconnect('dw').execute('dw', query='INSERT INTO public.hits (id) VALUES (%s) ON CONFLICT DO NOTHING', params=[rid])\n    \
    return {'id': rid}\n";

/// One node's addresses and cache; restarted in place after a kill.
struct Node {
    data: String,
    admin: String,
    cache: PathBuf,
    server: Option<Server>,
}

impl Node {
    fn start(&mut self, database_url: &str) {
        let args = [
            "--admin-listen",
            &self.admin,
            "--trusted-proxy",
            "127.0.0.1",
            common::METRICS_ARGS[0],
            common::METRICS_ARGS[1],
        ];
        self.server = Some(Server::start_node(
            database_url,
            &self.data,
            &self.cache,
            &args,
        ));
    }

    /// Whether this node has `tenant`'s snapshot on disk (built or loaded here).
    fn has_snapshot(&self, tenant: &str) -> bool {
        let key = hex::encode(&sha2::Sha256::digest(tenant.as_bytes())[..16]);
        snapshot_files(&self.cache.join("snapshots"))
            .iter()
            .any(|name| name.starts_with(&key))
    }
}

fn snapshot_files(root: &Path) -> Vec<String> {
    let Ok(runtimes) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    runtimes
        .flatten()
        .filter_map(|runtime| std::fs::read_dir(runtime.path()).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wasm") || name.ends_with(".cwasm"))
        .collect()
}

/// HAProxy, stopped when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn admin(base: &str, method: &str, path: &str, body: serde_json::Value) -> common::Reply {
    let auth = format!("Bearer {ADMIN_KEY}");
    let url = format!("{base}/admin/v1{path}");
    let body = body.to_string();
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    // Through the proxy, while a node restarts, an admin call may meet a 502 too.
    common::eventually(
        &format!("{method} {path}"),
        Duration::from_secs(30),
        || async {
            try_request(method, &url, &headers, body.as_bytes())
                .await
                .ok()
                .filter(|reply| reply.status != 502 && reply.status != 503)
        },
    )
    .await
}

/// POSTs `/{tenant}/hit?id=...` through the proxy until it is answered 200, as a client that
/// retries would. Returns how many attempts failed.
async fn hit_until_answered(base: &str, tenant: &str, auth: &str, id: &str) -> usize {
    let url = format!("{base}/{tenant}/hit?id={id}");
    let started = std::time::Instant::now();
    let mut failures = 0;
    loop {
        match try_request("POST", &url, &[("authorization", auth)], b"").await {
            Ok(reply) if reply.status == 200 => {
                assert_eq!(reply.json()["id"], id);
                return failures;
            }
            Ok(reply) => assert!(
                [502, 503, 504].contains(&reply.status),
                "{id}: {} {:?}",
                reply.status,
                reply.body
            ),
            Err(_) => {}
        }
        failures += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} was never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_behind_haproxy_survive_a_killed_node() {
    let db = fresh_database("cluster3").await;
    let dir = common::private_tempdir("pubfn-cluster-");
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node {
            data: free_addr(),
            admin: free_addr(),
            cache: dir.path().join(format!("node{i}")),
            server: None,
        })
        .collect();
    for node in &mut nodes {
        node.start(&db);
    }
    let (public, private) = (free_addr(), free_addr());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg");
    let mut haproxy = Command::new("/usr/sbin/haproxy");
    haproxy
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .env("PUBFN_LISTEN", &public)
        .env("PUBFN_ADMIN_LISTEN", &private)
        .stdout(Stdio::null());
    for (i, node) in nodes.iter().enumerate() {
        haproxy.env(format!("PUBFN_NODE_{}", i + 1), &node.data);
        haproxy.env(format!("PUBFN_ADMIN_{}", i + 1), &node.admin);
    }
    let _proxy = Proxy(
        haproxy
            .spawn()
            .expect("starting /usr/sbin/haproxy (scripts/setup installs it)"),
    );
    let (public, private) = (format!("http://{public}"), format!("http://{private}"));
    common::eventually("HAProxy answers", Duration::from_secs(20), || async {
        let reply = try_request("GET", &format!("{public}/readyz"), &[], b"").await;
        reply.ok().filter(|r| r.status == 200)
    })
    .await;

    // Every tenant is created, given a table and deployed through the proxy's admin
    // frontend, so its home node does all of it.
    let mut auths = Vec::new();
    let mut dbnames = Vec::new();
    for tenant in TENANTS {
        let created = admin(&private, "POST", "/tenants", json!({"name": tenant})).await;
        assert_eq!(created.status, 201, "{created:?}");
        let database = admin(
            &private,
            "PUT",
            &format!("/tenants/{tenant}/databases/dw"),
            json!({}),
        )
        .await;
        assert_eq!(database.status, 201, "{database:?}");
        dbnames.push(database.json()["dbname"].as_str().unwrap().to_string());
        let table = admin(
            &private,
            "POST",
            &format!("/tenants/{tenant}/databases/dw/sql"),
            json!({"sql": "CREATE TABLE public.hits (id text PRIMARY KEY)"}),
        )
        .await;
        assert_eq!(table.status, 200, "{table:?}");
        for (name, method, route, script) in [
            ("hit", "POST", "/hit", HIT),
            ("ver", "GET", "/ver", "def handler():\n    return 'v1'\n"),
        ] {
            let deployed = admin(
                &private,
                "PUT",
                &format!("/tenants/{tenant}/endpoints/{name}"),
                json!({"method": method, "route": route, "script": script}),
            )
            .await;
            assert_eq!(deployed.status, 200, "{deployed:?}");
        }
        let token = admin(
            &private,
            "POST",
            &format!("/tenants/{tenant}/tokens"),
            json!({"name": "load"}),
        )
        .await;
        assert_eq!(token.status, 201, "{token:?}");
        auths.push(format!(
            "Bearer {}",
            token.json()["token"].as_str().unwrap()
        ));
    }
    for (tenant, auth) in TENANTS.iter().zip(&auths) {
        hit_until_answered(&public, tenant, auth, &format!("{tenant}-warm")).await;
    }

    // All nodes up: each tenant's snapshot is on exactly one node.
    let homes: Vec<usize> = TENANTS
        .iter()
        .map(|tenant| {
            let holders: Vec<usize> = (0..3).filter(|&i| nodes[i].has_snapshot(tenant)).collect();
            assert_eq!(
                holders.len(),
                1,
                "{tenant}'s snapshot is on nodes {holders:?}"
            );
            holders[0]
        })
        .collect();
    let victim = (0..3)
        .max_by_key(|i| homes.iter().filter(|h| *h == i).count())
        .unwrap();

    // Load: two clients per tenant, each sending one request after another and retrying
    // until answered. Midway, the node serving the most tenants is killed, then restarted.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (tenant, auth) in TENANTS.iter().zip(&auths) {
        for worker in 0..2 {
            let (public, auth, stop) = (public.clone(), auth.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let (mut acked, mut retried) = (Vec::new(), 0);
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("{tenant}-{worker}-{n}");
                    retried += hit_until_answered(&public, tenant, &auth, &id).await;
                    acked.push(id);
                }
                (tenant.to_string(), acked, retried)
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[victim].server.as_mut().unwrap().child.kill().unwrap();
    nodes[victim].server.take().unwrap().child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes[victim].start(&db);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);

    let mut retried_total = 0;
    for client in clients {
        let (tenant, acked, retried) = client.await.unwrap();
        retried_total += retried;
        assert!(
            acked.len() > 3,
            "{tenant}: only {} requests answered",
            acked.len()
        );
        let index = TENANTS.iter().position(|t| *t == tenant).unwrap();
        let (client, connection) = common::cluster()
            .config(&dbnames[index])
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let stored: std::collections::HashSet<String> = client
            .query("SELECT id FROM public.hits", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(
            lost.is_empty(),
            "{tenant}: acknowledged but not stored: {lost:?}"
        );
    }
    eprintln!("requests retried by clients while a node was down: {retried_total}");

    // A deploy through any node reaches every node: each answers the new version directly.
    let tenant = TENANTS[homes.iter().position(|&h| h == victim).unwrap()];
    let auth = &auths[TENANTS.iter().position(|t| *t == tenant).unwrap()];
    for node in &nodes {
        let url = format!("http://{}/{tenant}/ver", node.data);
        let reply = try_request("GET", &url, &[("authorization", auth)], b"").await;
        assert_eq!(reply.map(|r| r.body), Ok("v1".into()));
    }
    let redeployed = admin(
        &private,
        "PUT",
        &format!("/tenants/{tenant}/endpoints/ver"),
        json!({"method": "GET", "route": "/ver", "script": "def handler():\n    return 'v2'\n"}),
    )
    .await;
    assert_eq!(redeployed.status, 200, "{redeployed:?}");
    for node in &nodes {
        let url = format!("http://{}/{tenant}/ver", node.data);
        common::eventually(
            &format!("{} serves v2", node.data),
            Duration::from_secs(15),
            || async {
                let reply = try_request("GET", &url, &[("authorization", auth)], b"").await;
                reply.ok().filter(|r| &r.body[..] == b"v2")
            },
        )
        .await;
    }
}
