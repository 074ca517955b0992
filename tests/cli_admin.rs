//! The CLI verbs against a real server.

#[path = "common/server.rs"]
mod common;

use common::{Server, fresh_database, request};

fn pubfn(server: &Server, args: &[&str]) -> (bool, String, String) {
    common::cli(server, args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_endpoint_and_token_verbs_drive_the_admin_api() {
    let db = fresh_database("cli").await;
    let server = Server::start(Some(&db), &[]);
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.py");
    let v2 = dir.path().join("v2.py");
    let broken = dir.path().join("broken.py");
    std::fs::write(&v1, "def handler():\n    return 'one'\n").unwrap();
    std::fs::write(&v2, "def handler():\n    return 'two'\n").unwrap();
    std::fs::write(&broken, "def handler(:\n").unwrap();

    assert!(pubfn(&server, &["tenant", "create", "cli"]).0);
    let (ok, out, _) = pubfn(&server, &["tenant", "list"]);
    assert!(ok && out.contains("\"cli\""), "{out}");
    for script in [&v1, &v2] {
        let (ok, _, err) = pubfn(
            &server,
            &[
                "endpoint",
                "deploy",
                "--tenant",
                "cli",
                "hi",
                "--route",
                "/hi",
                "--script",
                script.to_str().unwrap(),
            ],
        );
        assert!(ok, "{err}");
    }
    let (ok, _, err) = pubfn(
        &server,
        &[
            "endpoint",
            "deploy",
            "--tenant",
            "cli",
            "hi",
            "--route",
            "/hi",
            "--script",
            broken.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("line 1, column 13"), "{err}");

    let (ok, out, _) = pubfn(&server, &["token", "create", "--tenant", "cli", "client"]);
    assert!(ok);
    let issued: serde_json::Value = serde_json::from_str(&out).unwrap();
    let auth = format!("Bearer {}", issued["token"].as_str().unwrap());
    let url = format!("{}/cli/hi", server.base);
    assert_eq!(
        &request("GET", &url, &[("authorization", &auth)], b"")
            .await
            .body[..],
        b"two"
    );

    assert!(
        pubfn(
            &server,
            &[
                "endpoint",
                "rollback",
                "--tenant",
                "cli",
                "hi",
                "--version",
                "1"
            ]
        )
        .0
    );
    assert_eq!(
        &request("GET", &url, &[("authorization", &auth)], b"")
            .await
            .body[..],
        b"one"
    );
    let (ok, out, _) = pubfn(&server, &["endpoint", "show", "--tenant", "cli", "hi"]);
    assert!(ok && out.contains("return 'one'"), "{out}");

    let jti = issued["jti"].as_str().unwrap();
    assert!(pubfn(&server, &["token", "revoke", "--tenant", "cli", jti]).0);
    assert_eq!(
        request("GET", &url, &[("authorization", &auth)], b"")
            .await
            .status,
        401
    );
    assert!(pubfn(&server, &["endpoint", "delete", "--tenant", "cli", "hi"]).0);
    assert!(pubfn(&server, &["tenant", "delete", "cli"]).0);
    let (ok, _, err) = pubfn(&server, &["tenant", "delete", "cli"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn db_and_secret_verbs_drive_the_admin_api() {
    let db = fresh_database("clidata").await;
    let server = Server::start(Some(&db), &[]);
    let dir = tempfile::tempdir().unwrap();
    assert!(pubfn(&server, &["tenant", "create", "data"]).0);

    let (ok, out, err) = pubfn(&server, &["db", "add", "--tenant", "data", "dw_2"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"managed\""), "{out}");
    let (ok, out, _) = pubfn(&server, &["db", "list", "--tenant", "data"]);
    assert!(ok && out.contains("\"dw_2\""), "{out}");
    let url_file = dir.path().join("url");
    std::fs::write(
        &url_file,
        "postgresql://u:pw@localhost/x?host=/nonexistent\n",
    )
    .unwrap();
    let (ok, _, err) = pubfn(
        &server,
        &[
            "db",
            "add",
            "--tenant",
            "data",
            "ext",
            "--url-file",
            url_file.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("cannot connect"), "{err}");
    assert!(pubfn(&server, &["db", "remove", "--tenant", "data", "dw_2"]).0);
    let (_, out, _) = pubfn(&server, &["db", "list", "--tenant", "data"]);
    assert!(!out.contains("dw_2"), "{out}");

    let value_file = dir.path().join("value");
    std::fs::write(&value_file, "top-secret\n").unwrap();
    let (ok, out, err) = pubfn(
        &server,
        &[
            "secret",
            "set",
            "--tenant",
            "data",
            "TOKEN",
            "--from-file",
            value_file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("top-secret"), "{out}");
    let (ok, out, _) = pubfn(&server, &["secret", "list", "--tenant", "data"]);
    assert!(
        ok && out.contains("TOKEN") && !out.contains("top-secret"),
        "{out}"
    );
    assert!(pubfn(&server, &["secret", "remove", "--tenant", "data", "TOKEN"]).0);
    let (ok, _, err) = pubfn(&server, &["secret", "remove", "--tenant", "data", "TOKEN"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn egress_and_connection_verbs_drive_the_admin_api() {
    let db = fresh_database("cliegress").await;
    let server = Server::start(Some(&db), &[]);
    let dir = tempfile::tempdir().unwrap();
    assert!(pubfn(&server, &["tenant", "create", "out"]).0);
    let (ok, out, _) = pubfn(&server, &["egress", "show", "--tenant", "out"]);
    assert!(ok && out.contains("\"allow\": []"), "{out}");
    let set = [
        "egress",
        "set",
        "--tenant",
        "out",
        "API.example.com",
        "*.example.org:8443",
    ];
    let (ok, out, err) = pubfn(&server, &set);
    assert!(ok, "{err}");
    assert!(
        out.contains("api.example.com") && out.contains("*.example.org:8443"),
        "{out}"
    );
    let (ok, _, err) = pubfn(
        &server,
        &["egress", "set", "--tenant", "out", "ftp://x.example"],
    );
    assert!(
        !ok && err.contains("400") && err.contains("ftp://x.example"),
        "{err}"
    );

    let spec = dir.path().join("crm.json");
    std::fs::write(
        &spec,
        r#"{"base_url": "https://api.example.com/v3", "headers": {"Authorization": "Bearer crm-secret"}}"#,
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let (ok, out, err) = pubfn(
        &server,
        &[
            "connection",
            "set",
            "--tenant",
            "out",
            "crm",
            "--from-file",
            spec,
        ],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("crm-secret"), "{out}");
    let (ok, out, _) = pubfn(&server, &["connection", "list", "--tenant", "out"]);
    assert!(
        ok && out.contains("\"crm\"") && !out.contains("crm-secret"),
        "{out}"
    );
    assert!(pubfn(&server, &["connection", "remove", "--tenant", "out", "crm"]).0);
    let (ok, _, err) = pubfn(&server, &["connection", "remove", "--tenant", "out", "crm"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_and_csv_loads_reach_the_tenants_warehouse_as_its_role() {
    let db = fresh_database("cliwarehouse").await;
    let server = Server::start(Some(&db), &[]);
    let dir = tempfile::tempdir().unwrap();
    assert!(pubfn(&server, &["tenant", "create", "wh"]).0);
    let (ok, _, err) = pubfn(&server, &["db", "add", "--tenant", "wh", "dw_2"]);
    assert!(ok, "{err}");
    let schema = dir.path().join("schema.sql");
    std::fs::write(
        &schema,
        "CREATE SCHEMA salesforce;\n\
         CREATE TABLE salesforce.accounts (id int PRIMARY KEY, name text, revenue numeric);\n\
         SELECT current_user::text AS who, 1 AS one;\n",
    )
    .unwrap();
    let schema = schema.to_str().unwrap();
    let (ok, out, err) = pubfn(
        &server,
        &["db", "sql", "--tenant", "wh", "dw_2", "-f", schema],
    );
    assert!(ok, "{err}");
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(results[2]["columns"], serde_json::json!(["who", "one"]));
    let who = results[2]["rows"][0][0].as_str().unwrap();
    assert!(
        who.starts_with("pf_r_"),
        "SQL runs as the tenant's role, not {who}"
    );

    let csv = dir.path().join("accounts.csv");
    std::fs::write(
        &csv,
        "id,name,revenue\n1,Acme,1250.50\n2,\"Globex, Inc\",\n3,Initech,99\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    let load = [
        "db",
        "load",
        "--tenant",
        "wh",
        "dw_2",
        "salesforce.accounts",
        csv,
    ];
    let (ok, out, err) = pubfn(&server, &load);
    assert!(ok, "{err}");
    let loaded: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        loaded,
        serde_json::json!({"table": "salesforce.accounts", "columns": ["id", "name", "revenue"], "rows": 3})
    );
    // A value of the wrong type fails the whole load, naming its line and column.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name,revenue\n10,A,1\n11,B,lots\n").unwrap();
    let load_bad = [
        "db",
        "load",
        "--tenant",
        "wh",
        "dw_2",
        "salesforce.accounts",
        bad.to_str().unwrap(),
    ];
    let (ok, _, err) = pubfn(&server, &load_bad);
    assert!(!ok);
    assert!(err.contains("line 3") && err.contains("revenue"), "{err}");
    let count = dir.path().join("count.sql");
    std::fs::write(&count, "SELECT count(*) FROM salesforce.accounts").unwrap();
    let (ok, out, err) = pubfn(
        &server,
        &[
            "db",
            "sql",
            "--tenant",
            "wh",
            "dw_2",
            "-f",
            count.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("\"3\""),
        "nothing of the failed load stayed: {out}"
    );
    // What the role may not do, this may not do either.
    let escape = dir.path().join("escape.sql");
    std::fs::write(&escape, "CREATE EXTENSION dblink").unwrap();
    let (ok, _, err) = pubfn(
        &server,
        &[
            "db",
            "sql",
            "--tenant",
            "wh",
            "dw_2",
            "-f",
            escape.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("42501"), "{err}");
}
