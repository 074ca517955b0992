//! pq writes and transactions end to end: every method, every type both ways, and the
//! attacks that must fail in a read-write transaction.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, fresh_database, tenant_with_endpoint};
use serde_json::json;
use warehouse::{bearer, get, last_log, seed};

/// Writes a row of every type, reads it back, and reports each column that did not survive.
const ROUND_TRIP: &str = r#"
import datetime, decimal, uuid, pq
def handler():
    c = pq.dbconnect('dw_2')
    sent = {'id': 10, 'name': "O'Brien \"q\" -- ;", 'revenue': decimal.Decimal('99999.99'),
            'active': False, 'score': 1.25,
            'created': datetime.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc),
            'tags': ['x', 'y,z', 'q"uote', 'back\\slash', None], 'meta': {'n': 1.5, 'list': [1, None, 'a']},
            'logo': b'\x00\xff\x01bytes', 'uid': uuid.UUID('12345678-1234-5678-1234-567812345678'),
            'span': '3 days 04:05:06', 'day': datetime.date(2026, 7, 8)}
    inserted = c.insert('dw_2', 'salesforce', 'accounts', sent)
    # Python objects both ways (fetch gives dates as text by default, as Peliqan does).
    back = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 10}, enable_datetime_as_string=False)[0]
    expected = dict(sent, uid=str(sent['uid']))
    out = {'mismatch': {k: [repr(v), repr(back[k])] for k, v in expected.items() if back[k] != v},
           'inserted_equals_fetched': inserted == back}
    plain = c.fetch('dw_2', 'salesforce', 'accounts', where={'id': 10}, enable_python_types=False)[0]
    out['plain'] = {k: plain[k] for k in ('revenue', 'created', 'day', 'span')}
    out['by_date'] = [r['id'] for r in c.fetch('dw_2', 'salesforce', 'accounts', where={'day': datetime.date(2026, 7, 8)})]
    out['any'] = [r['id'] for r in c.fetch('dw_2', query='SELECT id FROM salesforce.accounts WHERE id = ANY(%s) ORDER BY id', params=[[1, 10]])]
    out['by_uuid'] = len(c.fetch('dw_2', query='SELECT 1 FROM salesforce.accounts WHERE uid = %s', params=[sent['uid']]))
    out['by_bytes'] = len(c.fetch('dw_2', query='SELECT 1 FROM salesforce.accounts WHERE logo = %s', params=[sent['logo']]))
    out['by_interval'] = len(c.fetch('dw_2', query='SELECT 1 FROM salesforce.accounts WHERE span > %s', params=['2 days']))

    updated = c.update('dw_2', 'salesforce', 'accounts', 10, {'name': 'Renamed', 'revenue': None})
    out['updated'] = [updated['name'], updated['revenue'], updated['score']]
    out['update_missing'] = c.update('dw_2', 'salesforce', 'accounts', 999, {'name': 'x'})
    created = c.upsert('dw_2', 'salesforce', 'accounts', 11, {'name': 'New'})
    merged = c.upsert('dw_2', 'salesforce', 'accounts', 11, {'score': 2.5})
    out['upserted'] = [created['id'], created['name'], merged['name'], merged['score']]
    out['deleted'] = [c.delete('dw_2', 'salesforce', 'accounts', 11), c.delete('dw_2', 'salesforce', 'accounts', 11)]
    out['executed'] = c.execute('dw_2', query='UPDATE salesforce.accounts SET active = %s WHERE id IN (%s, %s)', params=[True, 1, 10])

    c.execute('dw_2', query='CREATE TABLE public.pairs (a int, b text, v int, PRIMARY KEY (a, b))')
    pair = c.upsert('dw_2', 'public', 'pairs', {'a': 1, 'b': 'x'}, {'v': 5})
    out['pair'] = [pair['a'], pair['b'], pair['v']]
    out['pair_update'] = c.update('dw_2', 'public', 'pairs', {'a': 1, 'b': 'x'}, {'v': 6})['v']
    def error(call):
        try:
            call()
        except pq.DatabaseError as e:
            return [type(e).__name__, e.sqlstate, str(e)[:120]]
        return 'allowed'
    out['composite_scalar'] = error(lambda: c.update('dw_2', 'public', 'pairs', 1, {'v': 1}))
    out['not_null'] = error(lambda: c.insert('dw_2', 'salesforce', 'accounts', {'name': 'no id'}))
    out['duplicate'] = error(lambda: c.insert('dw_2', 'salesforce', 'accounts', {'id': 1}))
    out['bad_column'] = error(lambda: c.insert('dw_2', 'salesforce', 'accounts', {'id": 1; drop table x; --': 1}))
    out['bad_value'] = error(lambda: c.insert('dw_2', 'salesforce', 'accounts', {'id': 'not a number'}))
    out['commit_via_sql'] = error(lambda: c.execute('dw_2', query='COMMIT'))
    out['fetch_is_read_only'] = c.fetch('dw_2', query="SELECT current_setting('transaction_read_only') AS ro")[0]['ro']
    out['count'] = len(c.fetch('dw_2', 'salesforce', 'accounts'))

    c.execute('dw_2', query='CREATE TABLE public.more (id int8 PRIMARY KEY, small int2, real4 float4, '
              'vc varchar(10), ch char(3), ts timestamp, tm time, js json, nums numeric[], days date[], '
              'ints int4[], other inet, nothing text)')
    more = {'id': 2**40, 'small': -3, 'real4': 0.5, 'vc': 'short', 'ch': 'abc',
            'ts': datetime.datetime(2026, 1, 1, 12, 0, 1), 'tm': datetime.time(13, 14, 15),
            'js': {'a': [1, 'b', 2.5]}, 'nums': [decimal.Decimal('1.10'), None],
            'days': [datetime.date(2026, 1, 2)], 'ints': [[1, 2], [3, 4]], 'other': '10.0.0.1',
            'nothing': None}
    c.insert('dw_2', 'public', 'more', more)
    got = c.fetch('dw_2', 'public', 'more', enable_datetime_as_string=False)[0]
    out['mismatch_more'] = {k: [repr(v), repr(got[k])] for k, v in more.items() if got[k] != v}
    out['more_plain'] = c.fetch('dw_2', 'public', 'more', enable_python_types=False)[0]
    return out
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_method_and_type_round_trips() {
    let db = fresh_database("tenantwrites").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "writer", "w", "/w", ROUND_TRIP).await;
    seed(&server, "writer").await;
    let reply = get(&server, "/writer/w", &bearer(&server, "writer").await).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "writer", "w").await
    );
    let out = reply.json();
    assert_eq!(
        out["mismatch"],
        json!({}),
        "columns that did not round-trip"
    );
    assert_eq!(out["inserted_equals_fetched"], true);
    assert_eq!(
        out["plain"],
        json!({"revenue": 99999.99, "created": "2026-05-06T07:08:09.123456+00:00",
               "day": "2026-07-08", "span": "3 days 04:05:06"})
    );
    assert_eq!(out["by_date"], json!([10]));
    assert_eq!(out["any"], json!([1, 10]));
    for found in ["by_uuid", "by_bytes", "by_interval"] {
        assert_eq!(out[found], 1, "{found}");
    }
    assert_eq!(out["updated"], json!(["Renamed", null, 1.25]));
    assert_eq!(out["update_missing"], json!(null));
    assert_eq!(out["upserted"], json!([11, "New", "New", 2.5]));
    assert_eq!(out["deleted"], json!([1, 0]));
    assert_eq!(out["executed"], json!({"rowcount": 2}));
    assert_eq!(out["pair"], json!([1, "x", 5]));
    assert_eq!(out["pair_update"], 6);
    assert!(
        out["composite_scalar"][2]
            .as_str()
            .unwrap()
            .contains("pass pk as a dict"),
        "{}",
        out["composite_scalar"]
    );
    assert_eq!(out["not_null"][1], "23502");
    assert_eq!(out["duplicate"][1], "23505");
    assert_eq!(out["bad_column"][0], "DatabaseError");
    assert_eq!(out["bad_value"][0], "DatabaseError");
    assert!(
        out["commit_via_sql"][2]
            .as_str()
            .unwrap()
            .contains("transaction"),
        "{}",
        out["commit_via_sql"]
    );
    assert_eq!(out["fetch_is_read_only"], "on");
    assert_eq!(out["count"], 3, "the failed writes left nothing behind");
    assert_eq!(
        out["mismatch_more"],
        json!({}),
        "columns that did not round-trip"
    );
    assert_eq!(
        out["more_plain"],
        json!({"id": 1_099_511_627_776_i64, "small": -3, "real4": 0.5, "vc": "short", "ch": "abc",
               "ts": "2026-01-01T12:00:01", "tm": "13:14:15", "js": {"a": [1, "b", 2.5]},
               "nums": [1.1, null], "days": ["2026-01-02"], "ints": [[1, 2], [3, 4]],
               "other": "10.0.0.1", "nothing": null})
    );
}

const TRANSACTIONS: &str = r#"
import pq
def handler():
    c = pq.dbconnect('dw_2')
    mode = request.args.get('mode')
    if mode == 'commit':
        with c.transaction('dw_2'):
            c.insert('dw_2', 'salesforce', 'accounts', {'id': 20, 'name': 'a'})
            c.update('dw_2', 'salesforce', 'accounts', 20, {'name': 'b'})
        return {'done': True}
    if mode == 'raise':
        with c.transaction('dw_2'):
            c.insert('dw_2', 'salesforce', 'accounts', {'id': 21, 'name': 'a'})
            raise ValueError('boom')
    if mode == 'left_open':
        c.transaction('dw_2').__enter__()
        c.insert('dw_2', 'salesforce', 'accounts', {'id': 22, 'name': 'a'})
        return {'open': True}
    if mode == 'failed_statement':
        try:
            with c.transaction('dw_2'):
                c.insert('dw_2', 'salesforce', 'accounts', {'id': 23, 'name': 'a'})
                try:
                    c.insert('dw_2', 'salesforce', 'accounts', {'id': 1})
                except pq.DatabaseError:
                    pass
        except pq.DatabaseError as e:
            return {'commit_refused': e.sqlstate}
        return {'commit_refused': None}
    if mode == 'nested':
        with c.transaction('dw_2'):
            try:
                with c.transaction('dw_2'):
                    pass
            except pq.DatabaseError as e:
                return {'nested': str(e)}
    ids = [r['id'] for r in c.fetch('dw_2', 'salesforce', 'accounts', order_by='id')]
    return {'ids': ids}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn transactions_commit_roll_back_and_never_outlive_their_request() {
    let db = fresh_database("tenanttx").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "txn", "t", "/t", TRANSACTIONS).await;
    seed(&server, "txn").await;
    let auth = bearer(&server, "txn").await;
    let call = |mode: &'static str| {
        let (server, auth) = (&server, &auth);
        async move { get(server, &format!("/txn/t?mode={mode}"), auth).await }
    };
    let committed = call("commit").await;
    assert_eq!(
        committed.status,
        200,
        "{}",
        last_log(&server, "txn", "t").await
    );
    assert_eq!(committed.json(), json!({"done": true}));
    let raised = call("raise").await;
    assert_eq!(raised.status, 500);
    assert_eq!(call("left_open").await.json(), json!({"open": true}));
    assert_eq!(
        call("failed_statement").await.json(),
        json!({"commit_refused": "25P02"})
    );
    assert!(
        call("nested").await.json()["nested"]
            .as_str()
            .unwrap()
            .contains("do not nest")
    );
    // Only the committed row is there: the raised, left-open and failed ones rolled back, and
    // no lock or open transaction is left behind to block this read.
    assert_eq!(call("list").await.json(), json!({"ids": [1, 2, 20]}));
    let dbname = seed_dbname(&server, "txn").await;
    let client = warehouse::superuser(&dbname).await;
    let idle: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            &[&dbname],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(idle, 0, "a connection was left inside a transaction");
}

async fn seed_dbname(server: &Server, tenant: &str) -> String {
    let listed = common::admin(
        server,
        "GET",
        &format!("/tenants/{tenant}/databases"),
        json!(null),
    )
    .await
    .json();
    listed[0]["dbname"].as_str().unwrap().to_string()
}

/// Each must fail inside a read-write transaction, as `execute` runs it.
const ATTACKS: &[(&str, &str)] = &[
    ("set_role", "SET ROLE postgres"),
    ("reset_role", "RESET ROLE"),
    (
        "set_role_config",
        "SELECT set_config('role', 'postgres', false)",
    ),
    (
        "session_authorization",
        "SET SESSION AUTHORIZATION postgres",
    ),
    ("copy_to_program", "COPY (SELECT 1) TO PROGRAM 'id'"),
    (
        "copy_from_program",
        "COPY salesforce.accounts (name) FROM PROGRAM 'id'",
    ),
    ("copy_to_file", "COPY (SELECT 1) TO '/tmp/pubfn-escape'"),
    ("read_file", "SELECT pg_read_file('/etc/passwd')"),
    ("ls_dir", "SELECT pg_ls_dir('.')"),
    ("lo_import", "SELECT lo_import('/etc/passwd')"),
    ("create_extension", "CREATE EXTENSION dblink"),
    ("create_untrusted_language", "CREATE EXTENSION plpython3u"),
    ("alter_role_superuser", "ALTER ROLE CURRENT_USER SUPERUSER"),
    (
        "alter_role_createdb",
        "ALTER ROLE CURRENT_USER CREATEDB CREATEROLE",
    ),
    ("alter_role_bypassrls", "ALTER ROLE CURRENT_USER BYPASSRLS"),
    ("alter_other_role", "ALTER ROLE postgres PASSWORD 'owned'"),
    ("create_role", "CREATE ROLE escapee SUPERUSER"),
    (
        "dblink",
        "SELECT * FROM dblink('dbname=pubfn', 'SELECT 1') AS t(x int)",
    ),
    ("metadata_schema", "SELECT * FROM pubfn.tenants"),
    ("create_database", "CREATE DATABASE escape"),
    ("grant_self", "GRANT pg_read_server_files TO CURRENT_USER"),
];

#[tokio::test(flavor = "multi_thread")]
async fn sql_cannot_leave_the_tenants_role() {
    let db = fresh_database("tenantattacks").await;
    let server = Server::start(Some(&db), &[]);
    let attacks = serde_json::to_string(
        &ATTACKS
            .iter()
            .map(|(n, q)| (*n, *q))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .unwrap();
    let script = format!(
        r#"
import json, pq
ATTACKS = json.loads({attacks:?})
def handler():
    c = pq.dbconnect('dw_2')
    out = {{}}
    for name, query in ATTACKS.items():
        try:
            result = c.execute('dw_2', query=query)
            out[name] = ['allowed', str(result)]
        except pq.DatabaseError as e:
            out[name] = [type(e).__name__, e.sqlstate, str(e)[:100]]
    for name, attempt in {{'other_db': lambda: pq.dbconnect('dw_other'),
                           'other_db_by_name': lambda: c.fetch('dw_other', query='SELECT 1')}}.items():
        try:
            attempt()
            out[name] = ['allowed']
        except pq.DatabaseNotFound as e:
            out[name] = ['DatabaseNotFound', None, str(e)]
    out['whoami'] = c.fetch('dw_2', query='SELECT current_user::text AS u, session_user::text AS s')[0]
    return out
"#
    );
    tenant_with_endpoint(&server, "mallory", "x", "/x", &script).await;
    seed(&server, "mallory").await;
    // Another tenant's database exists on the same cluster; mallory must not reach it.
    tenant_with_endpoint(
        &server,
        "victim",
        "v",
        "/v",
        "def handler():\n    return 1\n",
    )
    .await;
    let victim_db = seed(&server, "victim").await;
    let reply = get(&server, "/mallory/x", &bearer(&server, "mallory").await).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "mallory", "x").await
    );
    let out = reply.json();
    for (name, _) in ATTACKS
        .iter()
        .copied()
        .chain([("other_db", ""), ("other_db_by_name", "")])
    {
        assert_ne!(out[name][0], "allowed", "{name} must fail: {}", out[name]);
    }
    assert_eq!(
        out["whoami"]["u"], out["whoami"]["s"],
        "still the tenant's own role"
    );
    assert!(out["whoami"]["u"].as_str().unwrap().starts_with("pf_r_"));
    // Reaching the victim's database by its PostgreSQL name through the same role fails too.
    let victim_client = warehouse::superuser(&victim_db).await;
    let count: i64 = victim_client
        .query_one("SELECT count(*) FROM salesforce.accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2, "the victim's data is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_stop_at_the_requests_deadline() {
    let db = fresh_database("tenantdeadline").await;
    let server = Server::start(Some(&db), &[]);
    let script = r#"
import pq
def handler():
    try:
        pq.dbconnect('dw_2').fetch('dw_2', query='SELECT pg_sleep(30)')
    except pq.DatabaseError as e:
        return {'sqlstate': e.sqlstate}
    return {'slept': True}
"#;
    tenant_with_endpoint(
        &server,
        "sleepy",
        "s",
        "/s",
        "def handler():\n    return 1\n",
    )
    .await;
    common::deploy(
        &server,
        "sleepy",
        "s",
        json!({"method": "GET", "route": "/s", "script": script,
               "limits": {"wall_ms": 1500}}),
    )
    .await;
    seed(&server, "sleepy").await;
    let reply = get(&server, "/sleepy/s", &bearer(&server, "sleepy").await).await;
    // PostgreSQL cancelled the statement (57014) while the handler still had time to answer.
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "sleepy", "s").await
    );
    assert_eq!(reply.json(), json!({"sqlstate": "57014"}));
}
