//! numpy and pandas in the sandbox, end to end over HTTP: a tenant that preloads pandas gets
//! the runtime's pandas flavour, `fetch(..., df=True)` returns a DataFrame typed by its columns,
//! and a handler returning a DataFrame answers JSON records. A tenant that does not keeps the
//! base interpreter, with no numpy in it.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, deploy, fresh_database};
use serde_json::json;
use warehouse::{bearer, get, last_log};

/// Seeds a table of every type the DataFrame maps, NULLs included.
const SEED: &str = r#"
def handler():
    db = pq.dbconnect(pq.DW_NAME)
    db.execute(pq.DW_NAME, query="CREATE SCHEMA IF NOT EXISTS sales")
    db.execute(pq.DW_NAME, query="""CREATE TABLE IF NOT EXISTS sales.orders (
        id int8 PRIMARY KEY, region text, amount numeric, weight float8, qty int4,
        paid bool, maybe_paid bool, at timestamptz, local_at timestamp, day date)""")
    db.execute(pq.DW_NAME, query="TRUNCATE sales.orders")
    db.execute(pq.DW_NAME, query="""INSERT INTO sales.orders
        SELECT i, CASE WHEN i %% 3 = 0 THEN 'north' WHEN i %% 3 = 1 THEN 'south' ELSE 'west' END,
               (i * 1.25)::numeric, i * 0.5, CASE WHEN i %% 10 = 0 THEN NULL ELSE i END,
               i %% 2 = 0, CASE WHEN i %% 7 = 0 THEN NULL ELSE i %% 2 = 0 END,
               timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour',
               timestamp '2026-01-01 00:00:00' + i * interval '1 minute',
               date '2026-01-01' + i
        FROM generate_series(1, 1000) i""")
    return {"seeded": 1000}
"#;

/// The DataFrame's dtypes and a few values, read inside the sandbox.
const DTYPES: &str = r#"
import decimal
def handler():
    db = pq.dbconnect(pq.DW_NAME)
    df = db.fetch(pq.DW_NAME, 'sales', 'orders', df=True, order_by='id')
    plain = pq.load_table(schema_name='sales', table_name='orders', df=True,
                          enable_python_types=False, order_by='id', limit=3)
    return {
        "type": type(df).__module__ + "." + type(df).__name__,
        "shape": list(df.shape),
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
        "plain_amount": str(plain["amount"].dtype),
        "amount_0": [type(df["amount"][0]).__name__, str(df["amount"][0])],
        "qty_nulls": int(df["qty"].isna().sum()),
        "at_0": df["at"][0].isoformat(),
        "columns": list(df.columns),
        "numpy": __import__("numpy").__version__,
        "pandas": __import__("pandas").__version__,
    }
"#;

/// The issue's workload: 1,000 rows into a DataFrame, a groupby, the result returned as is.
const GROUPBY: &str = r#"
def handler():
    df = pq.dbconnect(pq.DW_NAME).fetch(pq.DW_NAME, 'sales', 'orders', df=True,
                                        enable_python_types=False)
    return df.groupby("region", as_index=False)[["amount", "weight"]].sum()
"#;

/// Dates and timestamps of a returned frame are ISO 8601 text, Decimals numbers.
const RETURNS_DATES: &str = r#"
def handler():
    df = pq.dbconnect(pq.DW_NAME).fetch(pq.DW_NAME, 'sales', 'orders', df=True,
                                        order_by='id', limit=2)
    return df[["id", "at", "qty", "amount"]]
"#;

const IMPORTS_NUMPY: &str = r#"
def handler():
    try:
        import numpy
        return {"numpy": numpy.__version__}
    except ImportError as e:
        return {"error": str(e)}
"#;

async fn tenant(server: &Server, name: &str, preload: Option<&[&str]>) {
    let created = admin(server, "POST", "/tenants", json!({"name": name})).await;
    assert_eq!(created.status, 201, "{created:?}");
    let db = admin(
        server,
        "PUT",
        &format!("/tenants/{name}/databases/dw_2"),
        json!({}),
    )
    .await;
    assert_eq!(db.status, 201, "{db:?}");
    if let Some(modules) = preload {
        let reply = admin(
            server,
            "PUT",
            &format!("/tenants/{name}/preload"),
            json!({ "modules": modules }),
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
}

async fn call(server: &Server, tenant: &str, endpoint: &str, script: &str) -> common::Reply {
    deploy(
        server,
        tenant,
        endpoint,
        json!({"method": "GET", "route": format!("/{endpoint}"), "script": script}),
    )
    .await;
    let auth = bearer(server, tenant).await;
    let reply = get(server, &format!("/{tenant}/{endpoint}"), &auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(server, tenant, endpoint).await
    );
    reply
}

#[tokio::test(flavor = "multi_thread")]
async fn pandas_is_there_for_the_tenants_that_preload_it_only() {
    let db = fresh_database("pandasdf").await;
    let server = Server::start(Some(&db), &[]);
    a_tenant_preloading_pandas_fetches_typed_dataframes_and_returns_records(&server).await;
    other_tenants_keep_the_base_interpreter_without_numpy(&server).await;
}

async fn a_tenant_preloading_pandas_fetches_typed_dataframes_and_returns_records(server: &Server) {
    tenant(server, "pd", Some(&["pandas"])).await;
    call(server, "pd", "seed", SEED).await;

    let out = call(server, "pd", "dtypes", DTYPES).await.json();
    assert_eq!(out["type"], "pandas.DataFrame", "{out}");
    assert_eq!(out["shape"], json!([1000, 10]));
    assert_eq!(
        out["columns"],
        json!([
            "id",
            "region",
            "amount",
            "weight",
            "qty",
            "paid",
            "maybe_paid",
            "at",
            "local_at",
            "day"
        ])
    );
    let dtypes = &out["dtypes"];
    assert_eq!(dtypes["id"], "int64", "{dtypes}");
    assert_eq!(dtypes["weight"], "float64", "{dtypes}");
    assert_eq!(dtypes["qty"], "Int64", "{dtypes}");
    assert_eq!(dtypes["paid"], "bool", "{dtypes}");
    assert_eq!(dtypes["maybe_paid"], "boolean", "{dtypes}");
    assert_eq!(dtypes["at"], "datetime64[ns, UTC]", "{dtypes}");
    assert_eq!(dtypes["local_at"], "datetime64[ns]", "{dtypes}");
    assert_eq!(dtypes["amount"], "object", "{dtypes}");
    assert_eq!(dtypes["region"], "str", "{dtypes}");
    assert_eq!(out["amount_0"], json!(["Decimal", "1.25"]));
    assert_eq!(out["plain_amount"], "float64");
    assert_eq!(out["qty_nulls"], 100);
    assert_eq!(out["at_0"], "2026-01-01T01:00:00+00:00");
    assert_eq!(out["numpy"], "2.5.5");
    assert_eq!(out["pandas"], "3.1.1");

    let reply = call(server, "pd", "groupby", GROUPBY).await;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // sum(i * 1.25) and sum(i * 0.5) over i = 1..1000 by i % 3.
    let mut expected = Vec::new();
    for (region, residue) in [("north", 0), ("south", 1), ("west", 2)] {
        let ids = (1..=1000).filter(|i| i % 3 == residue);
        let amount: f64 = ids.clone().map(|i| i as f64 * 1.25).sum();
        let weight: f64 = ids.map(|i| i as f64 * 0.5).sum();
        expected.push(json!({"region": region, "amount": amount, "weight": weight}));
    }
    assert_eq!(reply.json(), json!(expected));

    let records = call(server, "pd", "dates", RETURNS_DATES).await.json();
    assert_eq!(
        records,
        json!([
            {"id": 1, "at": "2026-01-01T01:00:00.000000Z", "qty": 1, "amount": 1.25},
            {"id": 2, "at": "2026-01-01T02:00:00.000000Z", "qty": 2, "amount": 2.5},
        ])
    );
}

/// On the same server (one compiled pandas interpreter for both tests' tenants): the other
/// tenants.
async fn other_tenants_keep_the_base_interpreter_without_numpy(server: &Server) {
    tenant(server, "plain", None).await;
    tenant(server, "numeric", Some(&["numpy"])).await;
    let plain = call(server, "plain", "np", IMPORTS_NUMPY).await.json();
    assert!(
        plain["error"]
            .as_str()
            .is_some_and(|e| e.contains("No module named 'numpy'")),
        "{plain}"
    );
    let numeric = call(server, "numeric", "np", IMPORTS_NUMPY).await.json();
    assert_eq!(numeric, json!({"numpy": "2.5.5"}));

    // A tenant's own package may not take numpy's or pandas' name.
    let refused = admin(
        server,
        "PUT",
        "/tenants/plain/modules/pandas",
        json!({"source": "x = 1"}),
    )
    .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
}

/// numpy's parts that share names across its extension modules (`random_poisson` is defined
/// twice with different return types on wasm32) and its C++, C and Fortran-turned-C parts,
/// checked against what native numpy answers for the same seeds and inputs. And a setter that
/// numpy declares with fewer parameters than CPython calls it with: wasm traps on that call
/// (python-runtime/patches/numpy/), natively it raises AttributeError.
const NUMPY_PARTS: &str = r#"
import numpy as np
def deleting_the_dtype():
    try:
        del np.ones(2).dtype
    except AttributeError as e:
        return str(e)
def handler():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    return {
        "del_dtype": deleting_the_dtype(),
        "version": np.__version__,
        "sum": float(a.sum()),
        "matmul": (a @ a.T).tolist(),
        "sorted": np.sort(np.array([3, 1, 2, 9, -4])).tolist(),
        "generator": np.random.default_rng(1).integers(0, 100, 3).tolist(),
        "legacy_poisson": np.random.RandomState(1).poisson(3.0, 3).tolist(),
        "fft": np.abs(np.fft.fft([1, 0, 0, 0])).tolist(),
        "inverse": np.linalg.inv(np.array([[2.0, 0], [0, 4.0]])).tolist(),
        "longdouble_eps": str(np.finfo(np.longdouble).eps),
    }
"#;

#[test]
fn pubfn_run_with_a_numpy_preload_runs_numpy() {
    let dir = common::private_tempdir("pubfn-numpy-run");
    let script = dir.path().join("numpy_parts.py");
    std::fs::write(&script, NUMPY_PARTS).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pubfn"))
        .args(["run", "--preload", "numpy", "--runtime"])
        .arg(common::runtime_dir())
        .arg(&script)
        .env("PUBFN_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("HTTP 200"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body: serde_json::Value =
        serde_json::from_str(stdout.split("\n\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "del_dtype": "Cannot delete array dtype",
            "version": "2.5.5",
            "sum": 66.0,
            "matmul": [[14.0, 38.0, 62.0], [38.0, 126.0, 214.0], [62.0, 214.0, 366.0]],
            "sorted": [-4, 1, 2, 3, 9],
            "generator": [47, 51, 75],
            "legacy_poisson": [2, 1, 1],
            "fft": [1.0, 1.0, 1.0, 1.0],
            "inverse": [[0.5, 0.0], [0.0, 0.25]],
            "longdouble_eps": "1.9259299443872358530559779425849273e-34",
        })
    );
}
