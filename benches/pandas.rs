//! The pandas flavour (issue targets in parentheses): `strict_pandas_fetch_groupby`, a strict
//! request whose handler reads 1,000 rows with `fetch(df=True)`, groups them and returns the
//! result (median and p99, printed after criterion's run), and what one more active pandas
//! tenant costs: its compiled snapshot on disk and the RSS its first request adds.
//!
//! The rows come from memory, exactly as `db/results.rs` hands them to the host capability
//! (`{"columns", "rows"}`, PostgreSQL's `to_json` per row): this measures the sandbox's share
//! (the host's column layout, the DataFrame, the groupby, the JSON records) without
//! PostgreSQL's. `scripts/bench --only p` measures the whole request over HTTP against
//! PostgreSQL, beside gunicorn + Flask + psycopg + native pandas.
//!
//! Needs a built runtime: `scripts/build-python-runtime` (scripts/setup runs it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
#[path = "common/rss.rs"]
mod rss;
use pubfn::db::{DatabaseCapability, DbError, DbRequest};
use pubfn::host::{Capabilities, GuestRequest};
use pubfn::packages::{PackageManifest, install};
use pubfn::sandbox::{
    Call, Isolation, Limits, PackageSet, PythonRuntime, Sandbox, SandboxConfig, Script,
};
use rss::rss_bytes;

const GROUPBY: &str = r#"
def handler():
    df = pq.dbconnect('dw').fetch('dw', 'sales', 'orders', df=True, enable_python_types=False)
    return df.groupby("region", as_index=False)[["amount", "weight"]].sum()
"#;

/// A fetch answered from memory: the 1,000 rows PostgreSQL would have returned.
struct Orders(Vec<u8>);

impl Orders {
    fn new() -> Self {
        let mut out = String::from(
            r#"{"columns":[{"name":"id","type":"int8"},{"name":"region","type":"text"},{"name":"amount","type":"numeric"},{"name":"weight","type":"float8"}],"rows":["#,
        );
        for i in 1..=1000 {
            let region = ["north", "south", "west"][i % 3];
            if i > 1 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"id":{i},"region":"{region}","amount":{}.{:02},"weight":{}}}"#,
                i * 5 / 4,
                (i * 25) % 100,
                i as f64 * 0.5
            ));
        }
        out.push_str("]}");
        Orders(out.into_bytes())
    }
}

#[async_trait::async_trait]
impl DatabaseCapability for Orders {
    async fn call(&self, request: &DbRequest, _deadline: Instant) -> Result<Vec<u8>, DbError> {
        match request {
            DbRequest::Fetch(_) => Ok(self.0.clone()),
            _ => Ok(b"{}".to_vec()),
        }
    }
}

fn pandas_set(rt: &tokio::runtime::Runtime, sandbox: &Sandbox, tenant: &str) -> Arc<PackageSet> {
    let manifest = PackageManifest {
        preload: vec!["pandas".into()],
        ..Default::default()
    };
    let hash = manifest.hash();
    let dir = install::install(&sandbox.packages_dir(), &hash, &manifest, &HashMap::new())
        .expect("installing the preload list");
    let set = Arc::new(PackageSet {
        hash,
        dir,
        preload_ms: 60_000,
        preload: manifest.preload,
    });
    rt.block_on(sandbox.prepare_packages(tenant, set.clone()))
        .expect("a snapshot with pandas");
    set
}

fn call(tenant: &str, set: &Arc<PackageSet>, db: &Arc<Orders>) -> Call {
    Call {
        tenant: tenant.into(),
        packages: Some(set.clone()),
        endpoint: "groupby".into(),
        version: "1".into(),
        script: Script::new(GROUPBY),
        isolation: Isolation::Strict,
        limits: Limits::default(),
        request: GuestRequest {
            method: "GET".into(),
            url: "http://localhost/pandas/groupby".into(),
            path: "/groupby".into(),
            ..Default::default()
        }
        .into(),
        capabilities: Capabilities {
            db: Some(db.clone() as Arc<dyn DatabaseCapability>),
            ..Default::default()
        },
        meter: Default::default(),
        seed: Default::default(),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = PythonRuntime::load(&pubfn::config::default_runtime_dir())
        .expect("a built runtime (run scripts/build-python-runtime)");
    let cache = pubfn::config::default_cache_dir();
    let sandbox = Sandbox::new(runtime, SandboxConfig::new(cache.clone())).expect("sandbox");
    let db = Arc::new(Orders::new());
    let set = pandas_set(&rt, &sandbox, "pandas");

    c.bench_function("strict_pandas_fetch_groupby", |b| {
        b.to_async(&rt).iter(|| async {
            let reply = sandbox.handle(call("pandas", &set, &db)).await.unwrap();
            assert_eq!(reply.response.status, 200);
        })
    });

    // Median and p99 over plain runs: criterion reports means and medians only.
    let mut times: Vec<Duration> = (0..300)
        .map(|_| {
            let start = Instant::now();
            rt.block_on(sandbox.handle(call("pandas", &set, &db)))
                .unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "strict_pandas_fetch_groupby: p50 {:.2} ms, p99 {:.2} ms (300 runs)",
        times[150].as_secs_f64() * 1e3,
        times[296].as_secs_f64() * 1e3
    );

    // One more active pandas tenant: its snapshot on disk, and what its first request adds
    // to this process's RSS (its compiled snapshot mapped, its instance's memory touched).
    let before = rss_bytes();
    let other = pandas_set(&rt, &sandbox, "pandas-2");
    rt.block_on(sandbox.handle(call("pandas-2", &other, &db)))
        .unwrap();
    let after = rss_bytes();
    let snapshots = pubfn::sandbox::snapshot::runtime_dir(&cache, sandbox.runtime());
    let size: u64 = std::fs::read_dir(&snapshots)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with("instrumented"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    println!(
        "pandas_tenant: compiled snapshot {:.1} MiB on disk; first request adds {:.1} MiB RSS",
        size as f64 / (1 << 20) as f64,
        after.saturating_sub(before) as f64 / (1 << 20) as f64
    );
}

criterion_group!(pandas_benches, benches);
criterion_main!(pandas_benches);
