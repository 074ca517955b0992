//! A strict instance starts from exactly the snapshot's memory, however scattered its
//! predecessor's writes were, and the pages a handler dirties stay resident for the next
//! instance in that slot (third_party/README.md: the patched reset of wasmtime's pool).
//!
//! One test in its own binary: it counts the process's page faults, which other tests running
//! beside it would add to.

#[path = "common/sandbox.rs"]
mod common;

use common::{call, get, sandbox};

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

    let hello = || sandbox().handle(call("scatter", "hello", HELLO, get("/h", "")));
    for _ in 0..50 {
        hello().await.expect("warming the slot up");
    }
    const CALLS: u64 = 300;
    let before = minor_faults();
    for _ in 0..CALLS {
        hello().await.expect("hello");
    }
    let per_call = (minor_faults() - before) as f64 / CALLS as f64;
    eprintln!("minor page faults per strict hello: {per_call:.1}");
    // Unpatched, every reset decommitted what lay past the scan's 32nd region, and each call
    // faulted ~125 pages back in (measured when this test was written).
    assert!(
        per_call < 20.0,
        "{per_call:.1} page faults per strict call: the pages a handler dirties are not kept resident"
    );
}
