//! Rows a handler returns untouched are written into the response by the host
//! (src/db/render.rs); the bytes must be exactly those of the Python path (the same rows made
//! into dicts and encoded by the driver), for every type of the type table and every fetch
//! option. Both paths run in the same request, over real HTTP and a real PostgreSQL.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, fresh_database, tenant_with_endpoint, token};
use serde_json::json;
use warehouse::{get, last_log, superuser};

const TYPES: &str = r#"
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TYPE pair AS (a int, b numeric);
CREATE TABLE every (
  id int4 PRIMARY KEY, i2 int2, i8 int8, n numeric, n2 numeric(12,2), f4 float4, f8 float8,
  b bool, t text, v varchar(20), c char(3), nm name, u uuid, d date, tm time, tz timetz,
  ts timestamp, tstz timestamptz, iv interval, ip inet, j json, jb jsonb, by bytea, m mood,
  money_ money, a_int int4[], a_text text[], a_num numeric[], a_f8 float8[], a_jb jsonb[],
  a_tstz timestamptz[], a_date date[], a_bool bool[], a_2d int4[][]);
CREATE TABLE odd (id int4, p pair);
INSERT INTO odd VALUES (1, ROW(1, 2.50));
INSERT INTO every VALUES
 (1, -32768, 9223372036854775807, 12.50, 100.00, 0.1, 0.14285714285714285, true,
  E'quote " backslash \\ newline \n tab \t bell \x07 é 😀 \u2028', 'varchar', 'ab', 'nm',
  '00000000-0000-0000-0000-000000000001', '2026-02-03', '10:00:00.5', '10:00:00+02',
  '2026-01-02 03:04:05.25', '2026-01-02 03:04:05.123456+00', '1 day 02:00:00', '10.0.0.1/8',
  '{"b": 1.0, "a": [1, 2.50, "\u00e9"], "b": 2, "n": null, "big": 1e400, "neg": -0}',
  '{"k": [1, 2.0, {"x": "y"}], "e": 1.5e-7, "f": 12345678901234567890}',
  '\x00ff10', 'sad', 12.34, '{1,NULL,3}', '{"a","b c",NULL}', '{1.0,2.5,NaN}',
  '{1e16,1e-5,3}', ARRAY['{"x": 1}'::jsonb, NULL], '{"2026-01-01 00:00:00+00"}',
  '{2026-01-01,NULL}', '{true,false}', '{{1,2},{3,4}}'),
 (2, 0, -1, 'NaN', -0.00, 'NaN', 'Infinity', false, '', NULL, NULL, NULL, NULL, NULL,
  '23:59:59.999999', NULL, '2026-12-31 23:59:59', '1999-12-31 22:30:00+00', NULL, NULL,
  '[]', '{}', '\x', 'ok', NULL, '{}', '{}', '{}', '{-Infinity}', '{}', '{}', '{}', '{}', '{}'),
 (3, NULL, NULL, 123456789012345678901234567890.123, 7, 1e-7, 1e16, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// Returns the fetch with the options of `?combo=` through the host (`via=host`, the rows
/// untouched inside a dict) or through Python (`via=python`, the same rows made a plain list).
const HANDLER: &str = r#"
COMBOS = [
    {},
    {'enable_python_types': False},
    {'enable_datetime_as_string': False},
    {'enable_python_types': False, 'enable_datetime_as_string': False},
    {'tz': '+05:30'},
    {'tz': '-02:00', 'enable_datetime_as_string': False},
    {'fillna_with': 0, 'fillnat_with': 'never'},
    {'fillna_with': ''},
]

import datetime
HOLD = []

class Probe(datetime.date):
    """Encoded after the rows: says whether Python made them into dicts meanwhile."""
    def isoformat(self):
        rows = HOLD.pop()
        return 'kept' if type(rows).__name__ == 'Rows' and not rows._done else 'made'

def handler():
    combo = COMBOS[int(request.args['combo'])]
    table = request.args.get('table', 'every')
    rows = pq.dbconnect('dw_2').fetch('dw_2', 'public', table, order_by='id', **combo)
    kept = type(rows).__name__
    HOLD.append(rows)
    if request.args['via'] == 'python':
        rows = list(rows)
    return {'kept': kept, 'rows': rows, 'probe': Probe(2000, 1, 1)}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn host_written_rows_are_byte_for_byte_the_python_paths() {
    let db = fresh_database("rowsrender").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "render", "r", "/r", HANDLER).await;
    let created = admin(&server, "PUT", "/tenants/render/databases/dw_2", json!({})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let dbname = created.json()["dbname"].as_str().unwrap().to_string();
    let client = superuser(&dbname).await;
    let owner = warehouse::public_owner(&client).await;
    client.batch_execute(TYPES).await.unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE every OWNER TO {owner}; ALTER TABLE odd OWNER TO {owner}; \
             ALTER TYPE mood OWNER TO {owner}; ALTER TYPE pair OWNER TO {owner};"
        ))
        .await
        .unwrap();
    let auth = format!(
        "Bearer {}",
        token(&server, "render", json!({"name": "c"})).await
    );
    for (table, kept) in [("every", "Rows"), ("odd", "list")] {
        for combo in 0..8 {
            let mut bodies = Vec::new();
            for via in ["host", "python"] {
                let path = format!("/render/r?combo={combo}&via={via}&table={table}");
                let reply = get(&server, &path, &auth).await;
                assert_eq!(
                    reply.status,
                    200,
                    "{path}: {}",
                    last_log(&server, "render", "r").await
                );
                bodies.push(String::from_utf8(reply.body.to_vec()).unwrap());
            }
            if std::env::var_os("SHOW_BODIES").is_some() {
                eprintln!("BODY {}", bodies[0]);
            }
            // The host wrote the rows only if Python never made them into dicts.
            let probes = if kept == "Rows" {
                ["kept", "made"]
            } else {
                ["made", "made"]
            };
            for (body, probe) in bodies.iter_mut().zip(probes) {
                let tail = format!(",\"probe\":\"{probe}\"}}");
                assert!(body.ends_with(&tail), "{table} combo {combo}: {body}");
                body.truncate(body.len() - tail.len());
            }
            let expected = format!("{{\"kept\":\"{kept}\",\"rows\":");
            assert!(
                bodies[0].starts_with(&expected),
                "{table} combo {combo}: {}",
                bodies[0]
            );
            assert_eq!(
                bodies[0], bodies[1],
                "{table} combo {combo}: host (left) and Python (right)"
            );
        }
    }
}

const TOUCHED: &str = r#"
import json, copy, pickle
def handler():
    c = pq.dbconnect('dw_2')
    def rows():
        return c.fetch('dw_2', 'salesforce', 'accounts', order_by='id')
    out = {}
    r = rows(); out['len'] = len(r); out['bool'] = bool(r)
    r = rows(); out['iter'] = [row['id'] for row in r]
    r = rows(); out['index'] = r[-1]['name']; out['slice'] = [x['id'] for x in r[:1]]
    r = rows(); out['eq'] = (r == list(rows())) and (list(rows()) == r)
    r = rows(); out['dumps'] = json.loads(json.dumps(r, default=str))[0]['name']
    r = rows(); out['repr'] = repr(r).startswith("[{'id': 1")
    r = rows(); out['concat'] = len([] + r) + len(r + [])
    r = rows(); out['pickle'] = len(pickle.loads(pickle.dumps(r))) + len(copy.deepcopy(r))
    r = rows(); out['in'] = r[0] in r
    r = rows(); r.append({'id': 99}); out['appended'] = len(r)
    r = rows(); r[0]['name'] = 'Changed'; out['mutated'] = r
    r = rows(); out['sorted'] = [x['id'] for x in sorted(r, key=lambda x: -x['id'])]
    out['isinstance'] = isinstance(rows(), list)
    return out
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kept_rows_behave_as_the_list_they_stand_for() {
    let db = fresh_database("rowstouched").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "touch", "t", "/t", TOUCHED).await;
    warehouse::seed(&server, "touch").await;
    let auth = format!(
        "Bearer {}",
        token(&server, "touch", json!({"name": "c"})).await
    );
    let reply = get(&server, "/touch/t", &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(&server, "touch", "t").await
    );
    let out = reply.json();
    assert_eq!(out["len"], 2);
    assert_eq!(out["bool"], true);
    assert_eq!(out["iter"], json!([1, 2]));
    assert_eq!(out["index"], "Globex");
    assert_eq!(out["slice"], json!([1]));
    assert_eq!(out["eq"], true);
    assert_eq!(out["dumps"], "Acme");
    assert_eq!(out["repr"], true);
    assert_eq!(out["concat"], 4);
    assert_eq!(out["pickle"], 4);
    assert_eq!(out["in"], true);
    assert_eq!(out["appended"], 3);
    assert_eq!(out["mutated"][0]["name"], "Changed");
    assert_eq!(out["mutated"][1]["name"], "Globex");
    assert_eq!(out["sorted"], json!([2, 1]));
    assert_eq!(out["isinstance"], true);
}

const CACHED: &str = r#"
CACHE = {}
def handler():
    if 'rows' not in CACHE:
        CACHE['rows'] = pq.dbconnect('dw_2').fetch('dw_2', 'salesforce', 'accounts', order_by='id')
        return {'first': True}
    return {'cached': CACHE['rows']}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn rows_kept_across_warm_requests_stay_the_rows_they_were() {
    let db = fresh_database("rowswarm").await;
    let server = Server::start(Some(&db), &[]);
    common::admin(&server, "POST", "/tenants", json!({"name": "warm"})).await;
    common::deploy(
        &server,
        "warm",
        "w",
        json!({"method": "GET", "route": "/w", "script": CACHED, "isolation": "warm"}),
    )
    .await;
    warehouse::seed(&server, "warm").await;
    let auth = format!(
        "Bearer {}",
        token(&server, "warm", json!({"name": "c"})).await
    );
    let mut cached = None;
    for _ in 0..20 {
        let reply = get(&server, "/warm/w", &auth).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            last_log(&server, "warm", "w").await
        );
        if let Some(rows) = reply.json().get("cached") {
            cached = Some(rows.clone());
            break;
        }
    }
    let cached = cached.expect("a warm instance served a second request");
    let names: Vec<&str> = cached
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "Globex"]);
}
