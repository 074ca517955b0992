//! Sandbox benchmarks (issue targets in parentheses): instantiate from the snapshot (p50 ≤ 50 µs),
//! strict hello (p50 ≤ 500 µs), warm hello (p50 ≤ 100 µs), and the RSS of one more idle warm
//! instance (≤ 10 MiB), which is printed rather than timed.
//!
//! Needs a built runtime: `scripts/build-python-runtime` (scripts/setup runs it).

use criterion::{Criterion, criterion_group, criterion_main};
use pubfn::host::GuestRequest;
use pubfn::sandbox::{Call, Isolation, Limits, PythonRuntime, Sandbox, SandboxConfig, Script};

/// A ~150-line handler with helpers, a class and module-level tables.
const REALISTIC: &str = include_str!("handlers/realistic.py");

const HELLO: &str = "def handler():\n    return {'hello': request.args.get('name', 'world')}\n";

fn sandbox() -> Sandbox {
    let runtime = PythonRuntime::load(&pubfn::config::default_runtime_dir())
        .expect("a built runtime (run scripts/build-python-runtime)");
    let mut config = SandboxConfig::new(pubfn::config::default_cache_dir());
    config.max_instances = 512;
    config.warm_max_idle = 512;
    Sandbox::new(runtime, config).expect("sandbox")
}

fn hello_call(isolation: Isolation, endpoint: &str) -> Call {
    Call {
        tenant: "bench".into(),
        endpoint: endpoint.into(),
        version: "1".into(),
        script: Script::new(HELLO),
        isolation,
        limits: Limits::default(),
        request: GuestRequest {
            method: "GET".into(),
            url: "http://localhost/bench/hello?name=ada".into(),
            path: "/hello".into(),
            query_string: "name=ada".into(),
            ..Default::default()
        },
        capabilities: Default::default(),
    }
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = sandbox();
    rt.block_on(sandbox.prepare_tenant("bench"))
        .expect("snapshot");

    c.bench_function("instantiate_from_snapshot", |b| {
        b.to_async(&rt)
            .iter(|| async { sandbox.instantiate_and_drop("bench").await.unwrap() })
    });
    c.bench_function("strict_hello", |b| {
        b.to_async(&rt).iter(|| async {
            let reply = sandbox
                .handle(hello_call(Isolation::Strict, "hello"))
                .await
                .unwrap();
            assert_eq!(reply.response.status, 200);
        })
    });
    c.bench_function("strict_realistic", |b| {
        b.to_async(&rt).iter(|| async {
            let mut call = hello_call(Isolation::Strict, "realistic");
            call.script = Script::new(REALISTIC);
            let reply = sandbox.handle(call).await.unwrap();
            assert_eq!(reply.response.status, 200);
        })
    });
    c.bench_function("check_realistic_script", |b| {
        b.to_async(&rt).iter(|| async {
            sandbox
                .check_script("bench", Script::new(HELLO), &Limits::default())
                .await
                .unwrap();
        })
    });
    c.bench_function("strict_none", |b| {
        b.to_async(&rt).iter(|| async {
            let mut call = hello_call(Isolation::Strict, "none");
            call.script = Script::new("def handler():\n    return None\n");
            sandbox.handle(call).await.unwrap();
        })
    });
    c.bench_function("warm_hello", |b| {
        b.to_async(&rt).iter(|| async {
            let reply = sandbox
                .handle(hello_call(Isolation::Warm, "hello"))
                .await
                .unwrap();
            assert_eq!(reply.response.status, 200);
        })
    });

    // RSS of idle warm instances: park one per endpoint, so none is reused, and divide.
    const EXTRA: usize = 100;
    rt.block_on(async {
        for i in 0..5 {
            sandbox.handle(hello_call(Isolation::Warm, &format!("rss-warmup-{i}"))).await.unwrap();
        }
        let before = rss_bytes();
        for i in 0..EXTRA {
            sandbox.handle(hello_call(Isolation::Warm, &format!("rss-{i}"))).await.unwrap();
        }
        let after = rss_bytes();
        println!(
            "idle_warm_instance_rss: {:.2} MiB per instance ({EXTRA} instances, {} idle in the pool)",
            (after.saturating_sub(before)) as f64 / EXTRA as f64 / (1 << 20) as f64,
            sandbox.idle_warm_instances()
        );
    });
}

criterion_group!(sandbox_benches, benches);
criterion_main!(sandbox_benches);
