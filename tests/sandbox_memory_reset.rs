//! A strict instance starts from exactly the snapshot's memory, however scattered its
//! predecessor's writes were, and the pages a handler dirties stay resident for the next
//! instance in that slot (third_party/README.md: the patched reset of wasmtime's pool).
//!
//! In a binary of their own: the tests count the process's page faults, which other tests
//! running beside them would add to; they take turns for the same reason.

#[path = "common/sandbox.rs"]
mod common;

use common::{call, get, sandbox};
use pubfn::sandbox::Sandbox;

/// Writes a marker into every module, and every function and class those modules hold that
/// takes attributes: writes spread over the whole interpreter heap, in far more separate
/// regions than one kernel scan returns. Reports any marker it finds on arrival.
const SCATTER: &str = r#"
import sys, builtins

def _targets():
    for module in list(sys.modules.values()):
        yield module
        for value in list(vars(module).values()):
            if callable(value):
                yield value

def handler():
    token = request.args["token"]
    targets = list(_targets())
    seen = sorted({m for m in (getattr(t, "_pubfn_marker", None) for t in targets) if isinstance(m, str)})
    written = 0
    for target in targets:
        try:
            setattr(target, "_pubfn_marker", token)
            written += 1
        except (AttributeError, TypeError):
            pass
    return {"seen": seen, "written": written}
"#;

/// Held by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HELLO: &str = "def handler():\n    return {'hello': 'world'}\n";

/// Minor page faults of this whole process so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    after_name
        .split(' ')
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("the minflt field")
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_instances_start_clean_after_scattered_writes_without_faulting_pages_back_in() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // One call at a time, so every instance lands in the slot its predecessor just left.
    for round in 0..12 {
        let token = format!("round-{round}");
        let reply = sandbox()
            .handle(call(
                "scatter",
                "scatter",
                SCATTER,
                get("/s", &format!("token={token}")),
            ))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {} {:?}", e.kind, e.output));
        let body: serde_json::Value = serde_json::from_slice(&reply.response.body).unwrap();
        assert_eq!(
            body["seen"],
            serde_json::json!([]),
            "round {round} found what an earlier instance wrote"
        );
        assert!(
            body["written"].as_u64().unwrap() > 1000,
            "the handler must write all over the heap: {body}"
        );
    }

    assert!(
        sandbox().keeps_pages_resident(),
        "this kernel has no PAGEMAP_SCAN (Linux 6.7 or later has it), so no dirty page can stay \
         resident between instances whatever wasmtime does: run this test on a kernel with it"
    );
    let per_call = faults_per_hello(sandbox()).await;
    eprintln!("minor page faults per strict hello: {per_call:.1}");
    // Unpatched, every reset decommitted what lay past the scan's 32nd region, and each call
    // faulted ~125 pages back in (measured when this test was written).
    assert!(
        per_call < 20.0,
        "{per_call:.1} page faults per strict call: the pages a handler dirties are not kept resident"
    );
}

/// The resident memory kept per slot is the operator's setting (`--sandbox-keep-resident-mib`):
/// with none kept, every strict call faults the pages it dirties in again.
#[tokio::test(flavor = "multi_thread")]
async fn with_nothing_kept_resident_every_strict_call_faults_its_pages_in() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let lean = common::new_sandbox_configured(common::test_cache_dir(), |config| {
        config.keep_resident_bytes = 0;
    });
    let per_call = faults_per_hello(&lean).await;
    eprintln!("minor page faults per strict hello, nothing kept resident: {per_call:.1}");
    assert!(
        per_call > 50.0,
        "{per_call:.1} page faults per strict call with nothing kept resident: the setting \
         does not reach the engine"
    );
}

/// Minor page faults per strict hello on `sandbox`, once its slot is warm.
async fn faults_per_hello(sandbox: &Sandbox) -> f64 {
    let hello = || sandbox.handle(call("scatter", "hello", HELLO, get("/h", "")));
    for _ in 0..50 {
        hello().await.expect("warming the slot up");
    }
    const CALLS: u64 = 300;
    let before = minor_faults();
    for _ in 0..CALLS {
        hello().await.expect("hello");
    }
    (minor_faults() - before) as f64 / CALLS as f64
}
