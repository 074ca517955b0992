//! Attacks of the outside review from the host and the metadata (issue 12): another local user
//! reaching the private cluster or its files, tokens signed with a leaked JWT secret, tenant
//! names read from the catalogue, placeholders rewritten inside function bodies.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, admin, connect, fresh_database, request, tenant_secret};
use serde_json::json;

fn is_root() -> bool {
    Command::new("id").arg("-u").output().unwrap().stdout == b"0\n"
}

/// Runs `argv` as the local user `nobody`; whether it succeeded, and what it printed.
fn as_nobody(argv: &[&str]) -> (bool, String) {
    assert!(
        is_root(),
        "this test acts as another local user (nobody), so it runs as root, as CI does"
    );
    let output = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .args(argv)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn psql(user: &str, host: &Path, sql: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .arg("-h")
        .arg(host)
        .args(["-U", user, "-d", "pubfn", "-w", "-At", "-c", sql]);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn another_local_user_reaches_neither_the_cluster_nor_the_data_dir() {
    // A data directory as `mktemp -d` makes it: root's, mode 0700.
    let dir = common::private_tempdir("pubfn-local-");
    let data = dir.path();
    let key = data.join("sealing.key");
    let server = Server::start(
        None,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--sealing-key-file",
            key.to_str().unwrap(),
        ],
    );
    // The server works: the demo answers.
    let token = admin(
        &server,
        "POST",
        "/tenants/demo/tokens",
        json!({"name": "t"}),
    )
    .await;
    let auth = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    let demo = request(
        "GET",
        &format!("{}/demo/accounts", server.base),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(demo.status, 200, "{demo:?}");

    let socket_dir = data.join("postgres");
    let sql = "select name, encode(jwt_sealed, 'hex') from pubfn.tenants";
    // The review's attack: psql as another user, as the superuser.
    let (ok, text) = as_nobody(&[
        "psql",
        "-h",
        socket_dir.to_str().unwrap(),
        "-U",
        "pubfn",
        "-d",
        "pubfn",
        "-w",
        "-c",
        sql,
    ]);
    assert!(!ok, "nobody reached the cluster: {text}");
    // Not the directory, the sealing key, the socket or the snapshots either.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pubfn-cache/snapshots");
    for path in [data, &key, &socket_dir.join(".s.PGSQL.5432"), &cache] {
        let (ok, text) = as_nobody(&["ls", "-l", path.to_str().unwrap()]);
        assert!(!ok, "nobody can list {}: {text}", path.display());
    }
    let (ok, text) = as_nobody(&["cat", key.to_str().unwrap()]);
    assert!(!ok, "nobody read the sealing key: {text}");
    use std::os::unix::fs::PermissionsExt;
    let socket_mode = std::fs::metadata(socket_dir.join(".s.PGSQL.5432"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(socket_mode & 0o077, 0, "socket mode {socket_mode:o}");

    // The server's own user is the superuser; nobody else is trusted, not even root with
    // another role's name.
    let own = psql("pubfn", &socket_dir, "select 1").output().unwrap();
    assert!(own.status.success(), "{own:?}");
    let role: String = String::from_utf8(
        psql(
            "pubfn",
            &socket_dir,
            "select role from pubfn.tenant_databases limit 1",
        )
        .output()
        .unwrap()
        .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    assert!(role.starts_with("pf_r_"), "{role}");
    let as_tenant = psql(&role, &socket_dir, "select 1").output().unwrap();
    assert!(
        !as_tenant.status.success(),
        "no password, no login: {as_tenant:?}"
    );
    let hba = std::fs::read_to_string(socket_dir.join("data/pg_hba.conf")).unwrap();
    assert!(!hba.contains("trust"), "{hba}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_secrets_are_sealed_and_tokens_pubfn_never_issued_are_refused() {
    let db = fresh_database("sealedjwt").await;
    let server = Server::start(Some(&db), &[]);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "acme"}))
            .await
            .status,
        201
    );
    let metadata = connect(&db).await;
    let row = metadata
        .query_one(
            "SELECT jwt_secret IS NULL, jwt_sealed FROM pubfn.tenants WHERE name = 'acme'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "no plaintext secret is stored");
    let secret = tenant_secret(&db, "acme").await;
    let sealed: Vec<u8> = row.get(1);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));

    // A row written before secrets were sealed is sealed at the next start.
    let legacy = [42u8; 32];
    metadata
        .execute(
            "INSERT INTO pubfn.tenants (name, jwt_secret) VALUES ('legacy', $1)",
            &[&legacy.as_slice()],
        )
        .await
        .unwrap();
    drop(server);
    let server = Server::start(Some(&db), &[]);
    let row = metadata
        .query_one(
            "SELECT jwt_secret IS NULL FROM pubfn.tenants WHERE name = 'legacy'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the legacy secret was sealed");
    assert_eq!(tenant_secret(&db, "legacy").await, legacy);

    // Whoever holds the secret still cannot mint tokens: pubfn never issued their ids.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (tenant, key) in [("acme", secret.clone()), ("legacy", legacy.to_vec())] {
        let claims = pubfn::auth::jwt::Claims {
            iss: "pubfn".into(),
            aud: tenant.into(),
            sub: "mallory".into(),
            jti: "any-id-at-all".into(),
            iat: now,
            nbf: now,
            exp: Some(now + 600),
            admin: true,
            endpoints: None,
            custom: Default::default(),
        };
        let forged = format!("Bearer {}", pubfn::auth::jwt::issue(&key, &claims).unwrap());
        let admin_call = request(
            "GET",
            &format!("{}/admin/v1/tenants/{tenant}/endpoints", server.base),
            &[("authorization", &forged)],
            b"",
        )
        .await;
        assert_eq!(admin_call.status, 401, "{tenant}: {admin_call:?}");
        assert!(String::from_utf8_lossy(&admin_call.body).contains("not a token pubfn issued"));
        let whoami = request(
            "GET",
            &format!("{}/{tenant}/_whoami", server.base),
            &[("authorization", &forged)],
            b"",
        )
        .await;
        assert_eq!(whoami.status, 401, "{tenant}");
        // One pubfn issued works, on a node that had not heard of it before.
        let issued = common::token(&server, tenant, json!({"name": "real"})).await;
        let whoami = request(
            "GET",
            &format!("{}/{tenant}/_whoami", server.base),
            &[("authorization", &format!("Bearer {issued}"))],
            b"",
        )
        .await;
        assert_eq!(whoami.status, 200, "{tenant}: {whoami:?}");
    }
}

const CATALOGUE: &str = "import pq\ndef handler():\n    db = pq.dbconnect('dw_2')\n    names = db.fetch('dw_2', query=\"SELECT datname AS n FROM pg_database UNION ALL SELECT rolname FROM pg_roles\")\n    rows = db.fetch('dw_2', 'salesforce', 'accounts')\n    body = db.fetch('dw_2', query=\"SELECT $$ %s $$ AS body, %s::int AS n\", params=[7])\n    return {'names': [r['n'] for r in names], 'rows': len(rows), 'body': body[0]}\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_catalogue_names_no_tenant_even_after_an_upgrade() {
    let db = fresh_database("catalogue").await;
    let server = Server::start(Some(&db), &[]);
    common::tenant_with_endpoint(&server, "secretco", "names", "/names", CATALOGUE).await;
    let dbname = warehouse::seed(&server, "secretco").await;
    let call = |server: &Server| {
        let url = format!("{}/secretco/names", server.base);
        let admin_base = server.admin_base.clone();
        async move {
            let token = request(
                "POST",
                &format!("{admin_base}/admin/v1/tenants/secretco/tokens"),
                &[("authorization", &format!("Bearer {}", common::ADMIN_KEY))],
                br#"{"name": "c"}"#,
            )
            .await
            .json()["token"]
                .as_str()
                .unwrap()
                .to_string();
            request(
                "GET",
                &url,
                &[("authorization", &format!("Bearer {token}"))],
                b"",
            )
            .await
        }
    };
    let check = |reply: common::Reply| {
        assert_eq!(reply.status, 200, "{reply:?}");
        let out = reply.json();
        let names = out["names"].to_string();
        assert!(!names.contains("secretco"), "{names}");
        assert_eq!(out["rows"], 2);
        // `%s` inside a dollar-quoted body is text, not a placeholder.
        assert_eq!(out["body"], json!({"body": " %s ", "n": 7}));
    };
    check(call(&server).await);

    // An older pubfn named databases and roles after their tenant: the next start renames them.
    drop(server);
    let superuser = warehouse::superuser("postgres").await;
    let role = warehouse::public_owner(&warehouse::superuser(&dbname).await).await;
    let (old_db, old_role) = ("t_secretco_dw_2_0a1b2c3d", "t_secretco_0a1b2c3d");
    // The stopped server's connections take a moment to go.
    let rename = format!("ALTER DATABASE \"{dbname}\" RENAME TO {old_db}");
    common::eventually("renaming the database", Duration::from_secs(20), || async {
        superuser.batch_execute(&rename).await.ok()
    })
    .await;
    superuser
        .batch_execute(&format!("ALTER ROLE \"{role}\" RENAME TO {old_role}"))
        .await
        .unwrap();
    connect(&db)
        .await
        .execute(
            "UPDATE pubfn.tenant_databases SET dbname = $1, role = $2 WHERE tenant = 'secretco'",
            &[&old_db, &old_role],
        )
        .await
        .unwrap();
    let server = Server::start(Some(&db), &[]);
    check(call(&server).await);
    let renamed = connect(&db)
        .await
        .query_one(
            "SELECT dbname, role FROM pubfn.tenant_databases WHERE tenant = 'secretco'",
            &[],
        )
        .await
        .unwrap();
    assert!(renamed.get::<_, String>(0).starts_with("pf_d_"));
    assert!(renamed.get::<_, String>(1).starts_with("pf_r_"));
}
