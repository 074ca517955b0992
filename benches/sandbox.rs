//! Sandbox benchmarks (issue targets in parentheses): instantiate from the snapshot (p50 ≤ 50 µs),
//! strict hello (p50 ≤ 500 µs), warm hello (p50 ≤ 100 µs), and the RSS of one more idle warm
//! instance (≤ 10 MiB), which is printed rather than timed.
//!
//! Packages (issue: a strict request that imports a preloaded package within 1.2x of a
//! hello's median): `strict_import_preloaded` against `strict_hello`, and
//! `strict_import_not_preloaded` for what the preload saves.
//!
//! Memory budget (issue: a reloaded tenant's first response p50 <= 10 ms): `snapshot_reload`,
//! loading a released tenant's compiled snapshot from disk.
//!
//! Needs a built runtime: `scripts/build-python-runtime` (scripts/setup runs it).

use std::collections::HashMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
#[path = "common/rss.rs"]
mod rss;
use pubfn::host::GuestRequest;
use pubfn::packages::{ModuleInfo, PackageManifest, install};
use pubfn::sandbox::{
    Call, Isolation, Limits, PackageSet, PythonRuntime, Sandbox, SandboxConfig, Script,
};
use rss::rss_bytes;

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
        packages: None,
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
        }
        .into(),
        capabilities: Default::default(),
        meter: Default::default(),
        seed: Default::default(),
    }
}

const IMPORTS_THATPKG: &str = "import thatpkg\n\ndef handler():\n    return {'hello': thatpkg.greet(request.args.get('name', 'world'))}\n";

/// A pure-Python package of about 2,500 lines: functions, classes, dataclasses, compiled
/// regular expressions and tables built at import, as real helper libraries have.
fn thatpkg_source() -> String {
    let mut source = String::from(
        "import dataclasses, re, enum\n\ndef greet(name):\n    return 'hello ' + name\n\n",
    );
    for i in 0..120 {
        source.push_str(&format!(
            "PATTERN_{i} = re.compile(r'^(?P<key>[a-z]{{1,{w}}})_{i}=(?P<value>\\d+)$')\n\n\
             @dataclasses.dataclass\nclass Record{i}:\n    key: str\n    value: int = {i}\n\n\
             \x20   def scaled(self, factor):\n        return self.value * factor + {i}\n\n\
             \x20   def parse(self, text):\n        m = PATTERN_{i}.match(text)\n        \
             return m and Record{i}(m['key'], int(m['value']))\n\n\
             class Kind{i}(enum.Enum):\n    A = {i}\n    B = {j}\n\n\
             TABLE_{i} = {{f'k{{n}}': n * {i} for n in range(40)}}\n\n",
            w = 3 + i % 5,
            j = i + 1000,
        ));
    }
    source
}

/// Package sets holding `thatpkg`, with and without it on the preload list, installed the way
/// the server installs them, and their snapshots built.
fn thatpkg_sets(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
) -> (Arc<PackageSet>, Arc<PackageSet>) {
    use sha2::{Digest, Sha256};
    let source = thatpkg_source();
    let sha256 = hex::encode(Sha256::digest(source.as_bytes()));
    let blobs = HashMap::from([(sha256.clone(), source.clone().into_bytes())]);
    let set = |preload: bool| {
        let mut manifest = PackageManifest::default();
        manifest.modules.insert(
            "thatpkg".into(),
            ModuleInfo {
                sha256: sha256.clone(),
                size: source.len() as u64,
            },
        );
        if preload {
            manifest.preload.push("thatpkg".into());
        }
        let hash = manifest.hash();
        let dir = install::install(&sandbox.packages_dir(), &hash, &manifest, &blobs)
            .expect("installing thatpkg");
        let set = Arc::new(PackageSet {
            hash,
            dir,
            preload_ms: 60_000,
            preload: manifest.preload.clone(),
        });
        rt.block_on(sandbox.prepare_packages("bench", set.clone()))
            .expect("a snapshot with thatpkg");
        set
    };
    (set(true), set(false))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = sandbox();
    rt.block_on(sandbox.prepare_tenant("bench"))
        .expect("snapshot");

    // What a tenant released under the memory budget pays on its next call before
    // instantiating: loading its compiled snapshot from disk (issue: reload p50 <= 10 ms).
    c.bench_function("snapshot_reload", |b| {
        b.iter(|| {
            sandbox.release_tenant("bench");
            let source = rt.block_on(sandbox.prepare_tenant("bench")).unwrap();
            assert_eq!(source, pubfn::sandbox::SnapshotSource::Disk);
        })
    });

    // The same, then the strict hello the reloaded tenant came for: what its first response
    // costs in CPU beyond a hello (faults on the freshly mapped module, among others).
    c.bench_function("snapshot_reload_then_strict_hello", |b| {
        b.to_async(&rt).iter(|| async {
            sandbox.release_tenant("bench");
            sandbox
                .handle(hello_call(Isolation::Strict, "reload"))
                .await
                .unwrap()
        })
    });

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
    let (preloaded, not_preloaded) = thatpkg_sets(&rt, &sandbox);
    for (name, set) in [
        ("strict_import_preloaded", &preloaded),
        ("strict_import_not_preloaded", &not_preloaded),
    ] {
        c.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let mut call = hello_call(Isolation::Strict, name);
                call.script = Script::new(IMPORTS_THATPKG);
                call.packages = Some(set.clone());
                let reply = sandbox.handle(call).await.unwrap();
                assert_eq!(reply.response.status, 200);
            })
        });
    }
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
                .check_script("bench", None, Script::new(HELLO), &Limits::default())
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
