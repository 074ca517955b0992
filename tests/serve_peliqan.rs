//! Handlers pasted from Peliqan, as its documentation writes them, end to end over HTTP: `pq`,
//! `request` and `RUN_CONTEXT` are there without an import, and the tenant's managed database
//! is its warehouse, where a handler creates its own schemas and tables.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, deploy, fresh_database};
use serde_json::json;
use warehouse::{bearer, get, last_log};

/// Peliqan's published-API boilerplate: no import, the global `request`, `pq`.
const BOILERPLATE: &str = r#"
def handler(request):
    return {
        "context": RUN_CONTEXT,
        "warehouse": pq.DW_NAME,
        "method": request["method"],
        "same_pq": pq.dbconnect(pq.DW_NAME).name,
    }
"#;

const FLASK_FORM: &str = r#"
import pq as imported

def handler():
    return {"context": RUN_CONTEXT, "imported_is_global": imported is pq,
            "warehouse": pq.DW_NAME, "args": request.args.get("x")}
"#;

/// A warehouse built from a handler: schema, table, index, view, function, rows.
const BUILD_WAREHOUSE: &str = r#"
def handler():
    db = pq.dbconnect(pq.DW_NAME)
    for statement in [
        "CREATE SCHEMA IF NOT EXISTS salesforce",
        "CREATE TABLE IF NOT EXISTS salesforce.accounts (id int PRIMARY KEY, name text, revenue numeric)",
        "CREATE INDEX IF NOT EXISTS accounts_name ON salesforce.accounts (name)",
        "CREATE OR REPLACE VIEW salesforce.big AS SELECT * FROM salesforce.accounts WHERE revenue > 100",
        "CREATE OR REPLACE FUNCTION salesforce.double(x numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT x * 2 $$",
    ]:
        db.execute(pq.DW_NAME, query=statement)
    db.upsert(pq.DW_NAME, 'salesforce', 'accounts', 1, {'name': 'Acme', 'revenue': 500})
    db.upsert(pq.DW_NAME, 'salesforce', 'accounts', 2, {'name': 'Tiny', 'revenue': 5})
    big = db.fetch(pq.DW_NAME, 'salesforce', 'big')
    doubled = db.fetch(pq.DW_NAME, query='SELECT salesforce.double(21) AS d', enable_python_types=False)
    try:
        db.execute(pq.DW_NAME, query='CREATE EXTENSION dblink')
        untrusted = 'allowed'
    except pq.DatabaseError as e:
        untrusted = e.sqlstate
    return {"big": [r["name"] for r in big], "doubled": doubled[0]["d"], "dblink": untrusted}
"#;

async fn tenant_with_warehouse(server: &Server, tenant: &str) {
    assert_eq!(
        admin(server, "POST", "/tenants", json!({"name": tenant}))
            .await
            .status,
        201
    );
    let created = admin(
        server,
        "PUT",
        &format!("/tenants/{tenant}/databases/dw_2"),
        json!({}),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pq_request_and_run_context_are_there_without_an_import() {
    let db = fresh_database("peliqanenv").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_warehouse(&server, "acme").await;
    for (name, script) in [("boiler", BOILERPLATE), ("flask", FLASK_FORM)] {
        deploy(
            &server,
            "acme",
            name,
            json!({"method": "GET", "route": format!("/{name}"), "script": script}),
        )
        .await;
    }
    let auth = bearer(&server, "acme").await;
    let reply = get(&server, "/acme/boiler", &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "acme", "boiler").await
    );
    assert_eq!(
        reply.json(),
        json!({"context": "api_handler", "warehouse": "dw_2", "method": "GET", "same_pq": "dw_2"})
    );
    let reply = get(&server, "/acme/flask?x=1", &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "acme", "flask").await
    );
    assert_eq!(
        reply.json(),
        json!({"context": "api_handler", "imported_is_global": true, "warehouse": "dw_2", "args": "1"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_builds_its_own_warehouse_but_no_untrusted_extension() {
    let db = fresh_database("peliqandw").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_warehouse(&server, "acme").await;
    deploy(
        &server,
        "acme",
        "build",
        json!({"method": "POST", "route": "/build", "script": BUILD_WAREHOUSE}),
    )
    .await;
    let auth = bearer(&server, "acme").await;
    let reply = common::request(
        "POST",
        &format!("{}/acme/build", server.base),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "acme", "build").await
    );
    // 42501: permission denied to create an untrusted extension.
    assert_eq!(
        reply.json(),
        json!({"big": ["Acme"], "doubled": 42, "dblink": "42501"})
    );
}

/// Peliqan's pipeline write, then the rows back with Peliqan's fetch options.
const WRITE_THEN_FETCH: &str = r#"
import datetime, decimal

def handler():
    db = pq.dbconnect(pq.DW_NAME)
    first = db.write('crm', 'contacts', [
        {'id': 1, 'name': 'Ada', 'score': 1.5, 'joined': datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)},
        {'id': 2, 'name': 'Bob', 'score': None, 'joined': None},
    ], pk='id')
    # A new key adds a column; a record without a key empties it; an unchanged row is not touched.
    second = db.write('crm', 'contacts', [
        {'id': 1, 'name': 'Ada', 'tags': ['x']},
        {'id': 2, 'name': 'Bob', 'score': None, 'joined': None},
    ], pk='id')
    rows = db.fetch(pq.DW_NAME, 'crm', 'contacts', order_by='id', fillnat_with='never', fillna_with='-')
    typed = db.fetch(pq.DW_NAME, query="SELECT timestamptz '2026-01-02 03:04:05+00' AS t, 2.50::numeric AS n",
                     enable_datetime_as_string=False)[0]
    shifted = db.fetch(pq.DW_NAME, query="SELECT timestamptz '2026-01-02 03:04:05+00' AS t", tz='+02:00')[0]
    loaded = pq.load_table(schema_name='crm', table_name='contacts', order_by='id')
    try:
        db.fetch(pq.DW_NAME, 'crm', 'contacts', df=True)
        df = 'allowed'
    except ImportError as e:
        df = str(e)
    return {
        'first': first, 'second': second,
        'rows': [{k: r[k] for k in ('id', 'name', 'score', 'joined', 'tags')} for r in rows],
        'typed': [type(typed['t']).__name__, str(typed['t']), type(typed['n']).__name__],
        'shifted': shifted['t'],
        'loaded': [r['name'] for r in loaded],
        'df': df,
    }
"#;

/// Peliqan merges a dict's top-level keys into the state.
const STATE_MERGE: &str = r#"
def handler():
    pq.set_state({'a': 1, 'b': 1})
    pq.set_state({'b': 2, 'c': 3})
    return pq.get_state()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn write_fetch_load_table_and_state_as_peliqan_has_them() {
    let db = fresh_database("peliqanwrite").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_warehouse(&server, "acme").await;
    for (name, script) in [("write", WRITE_THEN_FETCH), ("state", STATE_MERGE)] {
        deploy(
            &server,
            "acme",
            name,
            json!({"method": "GET", "route": format!("/{name}"), "script": script}),
        )
        .await;
    }
    let auth = bearer(&server, "acme").await;
    let reply = get(&server, "/acme/write", &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "acme", "write").await
    );
    let out = reply.json();
    assert_eq!(
        out["first"],
        json!({"status": "success", "table": "crm.contacts", "rows_written": 2,
               "rows_changed": 2, "columns_added": []})
    );
    assert_eq!(
        out["second"],
        json!({"status": "success", "table": "crm.contacts", "rows_written": 2,
               "rows_changed": 1, "columns_added": ["tags"]})
    );
    assert_eq!(
        out["rows"],
        json!([
            {"id": 1, "name": "Ada", "score": "-", "joined": "never", "tags": ["x"]},
            {"id": 2, "name": "Bob", "score": "-", "joined": "never", "tags": "-"},
        ])
    );
    assert_eq!(
        out["typed"],
        json!(["datetime", "2026-01-02 03:04:05+00:00", "Decimal"])
    );
    assert_eq!(out["shifted"], "2026-01-02T05:04:05+02:00");
    assert_eq!(out["loaded"], json!(["Ada", "Bob"]));
    assert!(
        out["df"].as_str().unwrap().contains("needs pandas"),
        "{}",
        out["df"]
    );
    let state = get(&server, "/acme/state", &auth).await;
    assert_eq!(state.json(), json!({"a": 1, "b": 2, "c": 3}));
}

/// Peliqan's boilerplate reading the request every way, answering with a tuple.
const ECHO: &str = r#"
def handler():
    method = request.method
    query_string = request.query_string
    headers = dict(request.headers)
    data = request.data
    form = request.form
    get_data = request.get_data()
    return {
        'method': method, 'query_string': query_string.decode('utf-8'),
        'content_type': headers.get('Content-Type'), 'data': data.decode('utf-8'),
        'form': form.to_dict(), 'get_data': get_data.decode('utf-8'),
        'json': request.get_json(silent=True), 'args': request.args.to_dict(flat=False),
    }, 201, {'X-Handled-By': 'peliqan-boilerplate'}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_boilerplate_reads_json_form_and_query_and_answers_a_tuple() {
    let db = fresh_database("peliqanecho").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_warehouse(&server, "acme").await;
    deploy(
        &server,
        "acme",
        "echo",
        json!({"method": "POST", "route": "/echo", "script": ECHO, "auth": "public"}),
    )
    .await;
    let url = format!("{}/acme/echo?page=2&tag=a&tag=b", server.base);
    let post = |content_type: &'static str, body: &'static [u8]| {
        let url = url.clone();
        async move { common::request("POST", &url, &[("content-type", content_type)], body).await }
    };
    let json_reply = post("application/json", br#"{"id": 7}"#).await;
    assert_eq!(
        json_reply.status,
        201,
        "{}",
        last_log(&server, "acme", "echo").await
    );
    assert_eq!(
        json_reply.header("x-handled-by"),
        Some("peliqan-boilerplate")
    );
    assert_eq!(
        json_reply.json(),
        json!({"method": "POST", "query_string": "page=2&tag=a&tag=b",
               "content_type": "application/json", "data": "{\"id\": 7}", "form": {},
               "get_data": "{\"id\": 7}", "json": {"id": 7},
               "args": {"page": ["2"], "tag": ["a", "b"]}})
    );
    let form_reply = post("application/x-www-form-urlencoded", b"name=Ada&lang=py").await;
    let form = form_reply.json();
    assert_eq!(form["form"], json!({"name": "Ada", "lang": "py"}));
    // As in Flask: a form body is in `form`; get_data() (called first here) keeps it whole.
    assert_eq!(form["get_data"], "name=Ada&lang=py");
    assert_eq!(form["json"], json!(null));
}
