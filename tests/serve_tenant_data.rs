//! pq data access end to end: managed tenant databases through HTTP.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, fresh_database, tenant_with_endpoint, token};
use serde_json::{Value, json};
use warehouse::{get, seed};

const SEED_HANDLER: &str = "import pq\n\ndef handler():\n    dbconn = pq.dbconnect('dw_2')\n    return dbconn.fetch('dw_2', 'salesforce', 'accounts')\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_handler_reads_the_tenants_table_unchanged() {
    let db = fresh_database("tenantdata").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "acme", "accounts", "/accounts", SEED_HANDLER).await;
    seed(&server, "acme").await;
    let auth = format!(
        "Bearer {}",
        token(&server, "acme", json!({"name": "c"})).await
    );
    let reply = get(&server, "/acme/accounts", &auth).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let rows = reply.json();
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["name"], "Acme");
    assert_eq!(rows[0]["revenue"], 1234.5);
    assert_eq!(rows[0]["active"], true);
    assert_eq!(rows[0]["created"], "2026-01-02T03:04:05+00:00");
    assert_eq!(rows[0]["tags"], json!(["a", "b"]));
    assert_eq!(rows[0]["meta"], json!({"k": [1, 2]}));
    assert_eq!(rows[0]["uid"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(rows[0]["day"], "2026-02-03");
    assert_eq!(rows[1]["revenue"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn types_filters_params_and_errors() {
    let db = fresh_database("tenanttypes").await;
    let server = Server::start(Some(&db), &[]);
    let script = r#"
import decimal, datetime, pq
def handler():
    c = pq.dbconnect('dw_2')
    row = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 1}, enable_datetime_as_string=False)[0]
    # Peliqan's default: dates and timestamps as ISO 8601 text.
    default = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 1})[0]
    plain = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 1}, enable_python_types=False)[0]
    out = {name: type(value).__name__ for name, value in row.items()}
    out['default_dates'] = [default['created'], default['day']]
    out['revenue_value'] = str(row['revenue'])
    out['plain_revenue'] = plain['revenue']
    out['plain_created'] = plain['created']
    out['logo_hex'] = row['logo'].hex()
    out['ordered'] = [r['id'] for r in c.fetch('dw_2', 'salesforce', 'accounts', order_by='id desc', limit=1)]
    out['query'] = c.fetch('dw_2', query='SELECT name FROM salesforce.accounts WHERE id = %s AND revenue > %s AND name LIKE %s',
                           params=[1, decimal.Decimal('100.00'), 'Ac%'])
    out['filled'] = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 2}, fillna_with='n/a')[0]['score']
    def error(**kw):
        try:
            c.fetch('dw_2', **kw)
        except pq.DatabaseError as e:
            return [type(e).__name__, e.sqlstate, str(e)[:80]]
        return 'allowed'
    out['missing_table'] = error(schema='salesforce', table='nope')
    out['injection'] = error(schema='x"; drop table salesforce.accounts; --', table='t')
    out['metadata'] = error(query='SELECT * FROM pubfn.tenants')
    out['set_role'] = error(query='SELECT set_config(%s, %s, false)', params=['role', 'postgres'])
    out['session_auth'] = error(query='SELECT 1; SET SESSION AUTHORIZATION postgres')
    out['read_file'] = error(query="SELECT pg_read_file('/etc/passwd')")
    out['lo_import'] = error(query="SELECT lo_import('/etc/passwd')")
    out['dblink'] = error(query="SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)")
    out['copy_program'] = error(query="COPY (SELECT 1) TO PROGRAM 'id'")
    try:
        pq.dbconnect('someone_elses')
        out['other_db'] = 'allowed'
    except pq.DatabaseNotFound:
        out['other_db'] = 'DatabaseNotFound'
    return out
"#;
    tenant_with_endpoint(&server, "typed", "t", "/t", script).await;
    seed(&server, "typed").await;
    let auth = format!(
        "Bearer {}",
        token(&server, "typed", json!({"name": "c"})).await
    );
    let reply = get(&server, "/typed/t", &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let out = reply.json();
    let types = json!({"id": "int", "name": "str", "revenue": "Decimal", "active": "bool", "score": "float",
        "created": "datetime", "tags": "list", "meta": "dict", "logo": "bytes", "uid": "str", "span": "str",
        "day": "date"});
    for (column, expected) in types.as_object().unwrap() {
        assert_eq!(&out[column], expected, "type of {column}");
    }
    assert_eq!(out["revenue_value"], "1234.50");
    assert_eq!(out["plain_revenue"], 1234.5);
    assert_eq!(out["plain_created"], "2026-01-02T03:04:05+00:00");
    assert_eq!(
        out["default_dates"],
        json!(["2026-01-02T03:04:05+00:00", "2026-02-03"])
    );
    assert_eq!(out["logo_hex"], "0102");
    assert_eq!(out["ordered"], json!([2]));
    assert_eq!(out["query"], json!([{"name": "Acme"}]));
    assert_eq!(out["filled"], "n/a");
    assert_eq!(out["missing_table"][1], "42P01");
    assert_eq!(out["injection"][0], "DatabaseError");
    assert_eq!(out["other_db"], "DatabaseNotFound");
    for attack in [
        "metadata",
        "set_role",
        "session_auth",
        "read_file",
        "lo_import",
        "dblink",
        "copy_program",
    ] {
        assert_ne!(out[attack], "allowed", "{attack} must fail");
        assert_eq!(out[attack][0], "DatabaseError", "{attack}: {}", out[attack]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_are_listed_and_removed_with_the_tenant() {
    let db = fresh_database("tenantdbs").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "temp", "e", "/e", SEED_HANDLER).await;
    seed(&server, "temp").await;
    let listed = admin(&server, "GET", "/tenants/temp/databases", json!(null))
        .await
        .json();
    let dbname = listed[0]["dbname"].as_str().unwrap().to_string();
    assert_eq!(listed[0]["name"], "dw_2");
    assert!(!listed.to_string().contains("password"));
    assert_eq!(
        admin(&server, "PUT", "/tenants/temp/databases/dw_2", json!({}))
            .await
            .status,
        409
    );
    // More managed databases share the tenant's role: deleting the tenant drops them all.
    for more in ["dw_3", "dw_4"] {
        let added = admin(
            &server,
            "PUT",
            &format!("/tenants/temp/databases/{more}"),
            json!({}),
        )
        .await;
        assert_eq!(added.status, 201, "{:?}", added.body);
    }
    assert_eq!(
        admin(&server, "DELETE", "/tenants/temp", json!(null))
            .await
            .status,
        204
    );
    let (client, connection) = common::cluster()
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await
        .unwrap();
    assert!(exists.is_none(), "the managed database was dropped");
}
