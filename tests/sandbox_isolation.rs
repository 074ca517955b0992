//! What instances share, and what they must never share.

#[path = "common/sandbox.rs"]
mod common;

use common::{call, get, new_sandbox, runtime_dir, sandbox};
use pubfn::sandbox::{Isolation, PythonRuntime, SnapshotSource};

async fn body_of(
    tenant: &str,
    endpoint: &str,
    script: &str,
    isolation: Isolation,
) -> serde_json::Value {
    let mut call = call(tenant, endpoint, script, get("/i", ""));
    call.isolation = isolation;
    let reply = sandbox()
        .handle(call)
        .await
        .unwrap_or_else(|e| panic!("{}: {:?}", e.kind, e.output));
    serde_json::from_slice(&reply.response.body).unwrap()
}

const COUNTER: &str =
    "count = 0\ndef handler():\n    global count\n    count += 1\n    return count\n";

#[tokio::test(flavor = "multi_thread")]
async fn warm_mode_keeps_globals_and_strict_mode_does_not() {
    let warm: Vec<_> = futures_serial(3, || {
        body_of("alpha", "counter-warm", COUNTER, Isolation::Warm)
    })
    .await;
    assert_eq!(warm, [1, 2, 3]);
    let strict: Vec<_> = futures_serial(3, || {
        body_of("alpha", "counter-strict", COUNTER, Isolation::Strict)
    })
    .await;
    assert_eq!(strict, [1, 1, 1]);
}

async fn futures_serial<F, Fut>(n: usize, mut f: F) -> Vec<serde_json::Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = serde_json::Value>,
{
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(f().await);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_that_failed_is_not_reused() {
    let script = "count = 0\ndef handler():\n    global count\n    count += 1\n    if request.args.get('fail'):\n        raise ValueError('boom')\n    return count\n";
    let run = |query: &'static str| {
        let mut call = call("alpha", "warm-fail", script, get("/w", query));
        call.isolation = Isolation::Warm;
        sandbox().handle(call)
    };
    assert_eq!(run("").await.unwrap().response.body, b"1");
    assert_eq!(run("").await.unwrap().response.body, b"2");
    assert!(run("fail=1").await.is_err());
    assert_eq!(
        run("").await.unwrap().response.body,
        b"1",
        "a fresh instance after the failure"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_never_see_each_others_globals_or_patched_builtins() {
    let polluter = r#"
import builtins, json, sys
builtins.abs = lambda x: 42
builtins.evil = True
json.dumps = lambda *a, **k: "pwned"
sys.modules["secret_of_alpha"] = type(sys)("secret_of_alpha")
SECRET = "alpha-only"
def handler():
    return {"abs": abs(-1), "dumps": json.dumps(1)}
"#;
    let reply = body_of("alpha", "polluter", polluter, Isolation::Warm).await;
    assert_eq!(reply, serde_json::json!({"abs": 42, "dumps": "pwned"}));
    let probe = r#"
import builtins, sys, json
def handler():
    return {"abs": abs(-1), "evil": hasattr(builtins, "evil"), "dumps": json.dumps(1),
            "module": "secret_of_alpha" in sys.modules, "secret": globals().get("SECRET")}
"#;
    for isolation in [Isolation::Strict, Isolation::Warm] {
        let seen = body_of("beta", "probe", probe, isolation).await;
        let clean = serde_json::json!({"abs": 1, "evil": false, "dumps": "1", "module": false, "secret": null});
        assert_eq!(seen, clean);
    }
    // Alpha's other endpoints do not see it either: warm instances belong to one endpoint.
    let seen = body_of("alpha", "probe", probe, Isolation::Warm).await;
    assert_eq!(seen["abs"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn random_differs_between_instances_of_one_snapshot() {
    let script =
        "import random, os\ndef handler():\n    return [random.random(), os.urandom(8).hex()]\n";
    let a = body_of("alpha", "rand", script, Isolation::Strict).await;
    let b = body_of("alpha", "rand", script, Isolation::Strict).await;
    assert_ne!(a[0], b[0]);
    assert_ne!(a[1], b[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_has_its_own_str_hash_secret() {
    let script = "def handler():\n    return [hash('pubfn'), hash(b'pubfn')]\n";
    let alpha = body_of("alpha", "hash", script, Isolation::Strict).await;
    let alpha_again = body_of("alpha", "hash", script, Isolation::Strict).await;
    let beta = body_of("beta", "hash", script, Isolation::Strict).await;
    assert_eq!(
        alpha, alpha_again,
        "one tenant's instances share their snapshot's secret"
    );
    assert_ne!(alpha, beta, "tenants must not share a hash secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_and_compiled_code_survive_a_restart() {
    let cache = tempfile::tempdir().unwrap();
    let first = new_sandbox(cache.path().to_path_buf());
    assert_eq!(
        first.prepare_tenant("gamma").await.unwrap(),
        SnapshotSource::Built
    );
    assert_eq!(
        first.prepare_tenant("gamma").await.unwrap(),
        SnapshotSource::Memory
    );
    let hash_script = "def handler():\n    return hash('x')\n";
    let before = first
        .handle(call("gamma", "h", hash_script, get("/", "")))
        .await
        .unwrap();
    drop(first);

    let second = new_sandbox(cache.path().to_path_buf());
    assert_eq!(
        second.prepare_tenant("gamma").await.unwrap(),
        SnapshotSource::Disk
    );
    let compiled = compiled_snapshots(cache.path());
    let after = second
        .handle(call("gamma", "h", hash_script, get("/", "")))
        .await
        .unwrap();
    assert_eq!(
        before.response.body, after.response.body,
        "the same snapshot came back"
    );
    // One tenant, one file: its compiled snapshot (the wasm it was compiled from is gone),
    // beside the instrumented interpreter every build starts from.
    assert_eq!(compiled.len(), 2, "{compiled:?}");
    assert!(
        compiled
            .iter()
            .any(|name| name.starts_with("instrumented-"))
    );
    assert!(!cache.path().join("wasmtime").exists(), "no wasmtime cache");
}

/// The `.cwasm` files under the snapshots folder.
fn compiled_snapshots(cache: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for runtime in std::fs::read_dir(cache.join("snapshots"))
        .unwrap()
        .flatten()
    {
        for entry in std::fs::read_dir(runtime.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".wasm") || name.ends_with(".cwasm") {
                names.push(name);
            }
        }
    }
    names
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Tenants share compiled functions, never snapshots: the second tenant's snapshot module is
/// compiled from the functions the first one's left on disk, and the two still differ in their
/// hash secrets.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_tenants_snapshot_reuses_the_first_ones_compiled_functions() {
    let cache = tempfile::tempdir().unwrap();
    let sandbox = new_sandbox(cache.path().to_path_buf());
    let functions = || {
        let runtime = PythonRuntime::load(runtime_dir()).unwrap();
        files_under(
            &cache
                .path()
                .join("snapshots")
                .join(&runtime.id[..16])
                .join("functions"),
        )
    };
    sandbox.prepare_tenant("first").await.unwrap();
    let after_first = functions();
    assert!(
        after_first > 1000,
        "the interpreter's functions are kept: {after_first}"
    );
    sandbox.prepare_tenant("second").await.unwrap();
    let new_in_second = functions() - after_first;
    // About 5 % of the entries differ between snapshots (measured: 570 of 11,030).
    assert!(
        new_in_second * 10 < after_first,
        "the second snapshot compiled {new_in_second} functions again (of {after_first})"
    );
    let hash_script = "def handler():\n    return hash('x')\n";
    let mut hashes = Vec::new();
    for tenant in ["first", "second"] {
        let reply = sandbox
            .handle(call(tenant, "h", hash_script, get("/", "")))
            .await
            .unwrap_or_else(|e| panic!("{tenant}: {}: {:?}", e.kind, e.output));
        hashes.push(reply.response.body);
    }
    assert_ne!(hashes[0], hashes[1], "tenants must not share a hash secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_of_another_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = runtime_dir();
    std::fs::copy(real.join("python.wasm"), dir.path().join("python.wasm")).unwrap();
    std::os::unix::fs::symlink(real.join("lib"), dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"abi_version": 99, "python": "3.13.5", "wasm": "python.wasm", "stdlib": "lib"}"#,
    )
    .unwrap();
    let err = PythonRuntime::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("ABI version 99"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_that_hit_its_memory_limit_is_not_reused_even_if_it_recovered() {
    let script = "count = 0\ndef handler():\n    global count\n    count += 1\n    if request.args.get('hog'):\n        try:\n            'x' * 10**9\n        except MemoryError:\n            pass\n    return count\n";
    let run = |query: &'static str| {
        let mut call = call("alpha", "warm-hog", script, get("/w", query));
        call.isolation = Isolation::Warm;
        call.limits.memory_bytes = 64 << 20;
        sandbox().handle(call)
    };
    assert_eq!(run("").await.unwrap().response.body, b"1");
    assert_eq!(
        run("hog=1").await.unwrap().response.body,
        b"2",
        "the handler recovers"
    );
    assert_eq!(
        run("").await.unwrap().response.body,
        b"1",
        "but its instance is not reused"
    );
}

/// Strict instances after the first load the code object it compiled (ABI ops 7 and 8).
#[tokio::test(flavor = "multi_thread")]
async fn later_strict_instances_run_the_cached_code_and_still_quote_the_source() {
    let script = "def helper(x):\n    return 1 / x\n\ndef handler():\n    if request.args.get('x'):\n        return helper(int(request.args['x']))\n    return helper(0)\n";
    for round in 0..3 {
        let reply = sandbox()
            .handle(call("alpha", "cached-code", script, get("/c", "x=4")))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {}", e.kind));
        assert_eq!(reply.response.body, b"0.25");
        let error = sandbox()
            .handle(call("alpha", "cached-code", script, get("/c", "")))
            .await
            .expect_err("division by zero");
        match error.kind {
            pubfn::sandbox::CallErrorKind::Exception(report) => {
                let tb = report.traceback.unwrap();
                assert!(tb.contains("return 1 / x"), "round {round}: {tb}");
                assert!(tb.contains("line 7, in handler"), "round {round}: {tb}");
            }
            other => panic!("round {round}: expected an exception, got {other:?}"),
        }
    }
}

/// A script's own module code cannot plant a different code object for its later instances,
/// nor can an offer with no cache entry survive a script that failed to load.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_cannot_plant_code_for_its_later_instances() {
    let planter = r#"
import _pq, marshal
planted = compile("def handler():\n    return 'planted'\n", "handler.py", "exec")
_pq.call(_pq.PQ_OP_SCRIPT_CODE_OFFER, marshal.dumps(planted))
def handler():
    return "original"
"#;
    for round in 0..4 {
        let reply = sandbox()
            .handle(call("alpha", "planter", planter, get("/p", "")))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {}", e.kind));
        assert_eq!(reply.response.body, b"original", "round {round}");
    }
    let oversized = "import _pq\ntry:\n    _pq.call(_pq.PQ_OP_SCRIPT_CODE_OFFER, b'x' * (2 << 20))\n    outcome = 'accepted'\nexcept Exception as exc:\n    outcome = type(exc).__name__\ndef handler():\n    return outcome\n";
    let reply = sandbox()
        .handle(call("alpha", "oversized", oversized, get("/o", "")))
        .await
        .unwrap_or_else(|e| panic!("{}", e.kind));
    assert_eq!(reply.response.body, b"HostError");
}
