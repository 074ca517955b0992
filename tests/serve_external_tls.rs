//! TLS to an external tenant database: a PostgreSQL that accepts only `hostssl` connections,
//! with a certificate from a test CA, reached with each `sslmode` over real HTTP.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, admin, deploy, fresh_database, private_tempdir};
use pubfn::db::LocalCluster;
use serde_json::json;
use warehouse::{bearer, get, last_log};

/// A cluster that takes TCP connections on 127.0.0.1 over TLS only.
struct TlsPostgres {
    data: PathBuf,
    port: u16,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

fn bindir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().expect("pg_ctl")
}

/// Runs pg_ctl as the cluster's owner (`postgres` when the tests run as root).
fn pg_ctl(data: &Path, args: &[&str]) {
    let pg_ctl = bindir().join("pg_ctl");
    let mut command = if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_ctl);
        c
    } else {
        Command::new(pg_ctl)
    };
    let status = command.arg("-D").arg(data).args(args).status().unwrap();
    assert!(status.success(), "pg_ctl {args:?}");
}

impl TlsPostgres {
    async fn start() -> TlsPostgres {
        let dir = private_tempdir("pubfn-pgtls-");
        let root = dir.path().join("pg");
        let mut cluster = LocalCluster::start(&root).expect("starting PostgreSQL");
        let (client, connection) = cluster
            .config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for statement in [
            "CREATE ROLE ext LOGIN PASSWORD 'ext-pw'",
            "CREATE DATABASE extdb OWNER ext",
        ] {
            client.batch_execute(statement).await.unwrap();
        }
        drop(client);
        cluster.stop().unwrap();
        let data = root.join("data");

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pubfn db test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        // For the name only: reached as 127.0.0.1, verify-full must fail and verify-ca pass.
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let owner = std::fs::metadata(&data)
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap();
        for (file, contents) in [
            ("server.crt", leaf.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            let path = data.join(file);
            std::fs::write(&path, contents).unwrap();
            std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        let hba = data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str(
            "hostssl all ext 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n",
        );
        std::fs::write(&hba, rules).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{}' \
             -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
            root.display()
        );
        let log = root.join("tls.log");
        pg_ctl(
            &data,
            &["-l", log.to_str().unwrap(), "-w", "-o", &options, "start"],
        );
        TlsPostgres {
            data,
            port,
            ca_pem: ca.pem(),
            _dir: dir,
        }
    }

    fn url(&self, host: &str, sslmode: &str) -> String {
        format!(
            "postgresql://ext:ext-pw@{host}:{}/extdb?sslmode={sslmode}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        pg_ctl(&self.data, &["-m", "immediate", "-w", "stop"]);
    }
}

const SSL_IN_USE: &str = "def handler():
    db = request.args['db']
    return pq.dbconnect(db).fetch(db, query='SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')[0]
";

#[tokio::test(flavor = "multi_thread")]
async fn external_databases_are_reached_over_tls_as_their_sslmode_says() {
    let pg = TlsPostgres::start().await;
    let server = Server::start(Some(&fresh_database("externaltls").await), &[]);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "tls"}))
            .await
            .status,
        201
    );
    let put = |name: &str, body: serde_json::Value| {
        let path = format!("/tenants/tls/databases/{name}");
        let server = &server;
        async move { admin(server, "PUT", &path, body).await }
    };

    // Refused: plain TCP to a hostssl-only server; an unknown CA; a name the certificate
    // does not carry; a bad sslmode.
    for (name, body, says) in [
        (
            "plain",
            json!({"url": pg.url("localhost", "disable")}),
            "no encryption",
        ),
        (
            "unknown_ca",
            json!({"url": pg.url("localhost", "verify-full")}),
            "certificate",
        ),
        (
            "wrong_name",
            json!({"url": pg.url("127.0.0.1", "verify-full"), "ca_pem": pg.ca_pem}),
            "certificate",
        ),
        (
            "bad_mode",
            json!({"url": pg.url("localhost", "always")}),
            "sslmode",
        ),
        (
            "bad_ca",
            json!({"url": pg.url("localhost", "verify-full"), "ca_pem": "not a certificate"}),
            "ca_pem",
        ),
    ] {
        let reply = put(name, body).await;
        let text = String::from_utf8_lossy(&reply.body).to_string();
        assert_eq!(reply.status, 400, "{name}: {text}");
        assert!(text.to_lowercase().contains(says), "{name}: {text}");
    }

    // Accepted: verified by name, by chain only, and encrypted without verification.
    for (name, body) in [
        (
            "full",
            json!({"url": pg.url("localhost", "verify-full"), "ca_pem": pg.ca_pem}),
        ),
        (
            "chain",
            json!({"url": pg.url("127.0.0.1", "verify-ca"), "ca_pem": pg.ca_pem}),
        ),
        ("required", json!({"url": pg.url("127.0.0.1", "require")})),
    ] {
        let reply = put(name, body).await;
        assert_eq!(reply.status, 201, "{name}: {:?}", reply.body);
    }
    deploy(
        &server,
        "tls",
        "ssl",
        json!({"method": "GET", "route": "/ssl", "script": SSL_IN_USE}),
    )
    .await;
    let auth = bearer(&server, "tls").await;
    for name in ["full", "chain", "required"] {
        let reply = get(&server, &format!("/tls/ssl?db={name}"), &auth).await;
        assert_eq!(
            reply.status,
            200,
            "{name}: {}",
            last_log(&server, "tls", "ssl").await
        );
        assert_eq!(reply.json(), json!({"ssl": true}), "{name}");
    }
}
