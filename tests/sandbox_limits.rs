//! Bad and hostile input: every case ends in a clear error, and the host carries on.

#[path = "common/sandbox.rs"]
mod common;

use common::{call, get, run, run_err, run_json, sandbox};
use pubfn::sandbox::{CallError, CallErrorKind, Limits, Reply};

async fn run_limited(script: &str, limits: Limits) -> Result<Reply, CallError> {
    let mut call = call("alpha", "limited", script, get("/l", ""));
    call.limits = limits;
    sandbox().handle(call).await
}

/// After any failure the same tenant still gets clean answers.
async fn assert_still_serving() {
    let body = run_json("def handler():\n    return {'ok': True}\n").await;
    assert_eq!(body, serde_json::json!({"ok": true}));
}

#[tokio::test(flavor = "multi_thread")]
async fn syntax_error_names_line_and_column() {
    match run_err("def handler():\n    return {'a': 1\n").await {
        CallErrorKind::Syntax(report) => {
            assert_eq!(report.line, Some(2));
            assert_eq!(report.column, Some(12));
            assert!(
                report.message.contains("never closed"),
                "{}",
                report.message
            );
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exception_traceback_shows_only_the_scripts_frames() {
    let script = "def helper(x):\n    return 1 / x\n\ndef handler():\n    return helper(0)\n";
    match run_err(script).await {
        CallErrorKind::Exception(report) => {
            let tb = report.traceback.unwrap();
            assert!(
                tb.contains("File \"handler.py\", line 5, in handler"),
                "{tb}"
            );
            assert!(tb.contains("return 1 / x"), "source lines are quoted: {tb}");
            assert!(
                tb.ends_with("ZeroDivisionError: division by zero\n"),
                "{tb}"
            );
            assert!(
                !tb.contains("pq/") && !tb.contains("_driver"),
                "SDK frames leak: {tb}"
            );
        }
        other => panic!("expected an exception, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_loop_hits_the_cpu_limit() {
    let limits = Limits {
        cpu_ms: 300,
        ..Limits::default()
    };
    let err = run_limited("def handler():\n    while True: pass\n", limits)
        .await
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::CpuLimit { limit_ms: 300 });
    assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catastrophic_regex_hits_the_cpu_limit() {
    let limits = Limits {
        cpu_ms: 300,
        ..Limits::default()
    };
    let script =
        "import re\ndef handler():\n    return bool(re.match(r'(a+)+$', 'a' * 40 + '!'))\n";
    let err = run_limited(script, limits).await.unwrap_err();
    assert_eq!(err.kind, CallErrorKind::CpuLimit { limit_ms: 300 });
}

#[tokio::test(flavor = "multi_thread")]
async fn sleep_hits_the_wall_limit_not_the_cpu_limit() {
    let limits = Limits {
        wall_ms: 300,
        ..Limits::default()
    };
    let err = run_limited("import time\ndef handler():\n    time.sleep(100)\n", limits)
        .await
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::WallLimit { limit_ms: 300 });
}

#[tokio::test(flavor = "multi_thread")]
async fn module_level_busy_loop_hits_the_cpu_limit() {
    let limits = Limits {
        cpu_ms: 300,
        ..Limits::default()
    };
    let err = run_limited("while True: pass\ndef handler(): pass\n", limits)
        .await
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::CpuLimit { limit_ms: 300 });
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_allocation_hits_the_memory_limit_and_the_next_call_works() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let err = run_limited("def handler():\n    return 'x' * 10**9\n", limits)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        CallErrorKind::MemoryLimit {
            limit_bytes: 64 << 20
        }
    );
    let err = run_limited(
        "def handler():\n    a = []\n    while True: a.append('x' * 10**6)\n",
        limits,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.kind,
        CallErrorKind::MemoryLimit {
            limit_bytes: 64 << 20
        }
    );
    assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn size_beyond_wasm32_is_a_clean_python_error() {
    // 10**10 bytes cannot even be expressed on wasm32: CPython refuses before allocating.
    match run_err("def handler():\n    return 'x' * 10**10\n").await {
        CallErrorKind::Exception(report) => {
            assert_eq!(report.exception_type.as_deref(), Some("OverflowError"))
        }
        other => panic!("expected OverflowError, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_after_raising_the_limit_is_a_clean_error() {
    let script = "import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1) + 1\ndef handler():\n    return f(0)\n";
    let kind = run_err(script).await;
    assert!(
        matches!(
            kind,
            CallErrorKind::MemoryLimit { .. } | CallErrorKind::StackOverflow
        ),
        "{kind:?}"
    );
    // Recursion through C (repr) stops at CPython's own C-stack guard.
    let script = "import sys\nsys.setrecursionlimit(10**7)\nclass A:\n    def __repr__(self): return repr(self)\ndef handler():\n    return repr(A())\n";
    match run_err(script).await {
        CallErrorKind::Exception(report) => {
            assert_eq!(report.exception_type.as_deref(), Some("RecursionError"));
            let tb = report.traceback.unwrap();
            assert!(tb.len() < 8_000, "the traceback is trimmed");
            // The innermost 40 of the script's frames (3 shown, then Python's count of the
            // repeats), and a count of the rest.
            assert_eq!(tb.matches("File \"handler.py\"").count(), 3, "{tb}");
            assert!(
                tb.contains("[Previous line repeated 37 more times]"),
                "{tb}"
            );
            assert!(tb.contains("earlier frames omitted]"), "{tb}");
        }
        other => panic!("expected RecursionError, got {other:?}"),
    }
    assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_capabilities_are_absent_inside_python() {
    let script = r#"
import os
def attempt(fn):
    try:
        fn()
        return "allowed"
    except BaseException as e:
        return type(e).__name__
def handler():
    return {
        "passwd": attempt(lambda: open("/etc/passwd").read()),
        "traversal": attempt(lambda: open("/usr/local/lib/../../../etc/passwd").read()),
        "environ": dict(os.environ),
        "socket": attempt(lambda: __import__("socket").socket()),
        "urllib": attempt(lambda: __import__("urllib.request").request.urlopen("http://127.0.0.1:1/")),
        "system": attempt(lambda: os.system("id")),
        "subprocess": attempt(lambda: __import__("subprocess").run(["id"])),
        "fork": attempt(lambda: os.fork()),
        "ctypes": attempt(lambda: __import__("ctypes")),
        "threads": attempt(lambda: __import__("threading").Thread(target=print).start()),
        "write_stdlib": attempt(lambda: open("/usr/local/lib/python3.13/json/__init__.py", "w")),
        "mkdir": attempt(lambda: os.mkdir("/usr/local/lib/x")),
    }
"#;
    let body = run_json(script).await;
    assert_eq!(body["environ"], serde_json::json!({}));
    for (what, outcome) in body.as_object().unwrap() {
        assert_ne!(outcome, "allowed", "{what} must fail inside Python");
    }
    assert_eq!(body["passwd"], "FileNotFoundError");
    assert_eq!(body["ctypes"], "ModuleNotFoundError");
}

#[tokio::test(flavor = "multi_thread")]
async fn unserialisable_returns_name_the_type() {
    let kind = run_err("def handler():\n    return {1, 2}\n").await;
    assert!(
        matches!(&kind, CallErrorKind::BadReturn(m) if m.contains("type set")),
        "{kind:?}"
    );
    let kind = run_err("def handler():\n    return {'f': lambda: 1}\n").await;
    assert!(
        matches!(&kind, CallErrorKind::BadReturn(m) if m.contains("function")),
        "{kind:?}"
    );
    let kind =
        run_err("def handler():\n    x = []\n    for _ in range(100000): x = [x]\n    return x\n")
            .await;
    assert!(
        matches!(&kind, CallErrorKind::BadReturn(m) if m.contains("nested too deeply")),
        "{kind:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_passed_to_the_pq_imports_is_refused_by_the_host() {
    let script = r#"
import _pq
def handler():
    r = {
        "ptr_past_memory": _pq.raw_host_call(1, 0x7fffffff, 100, 16),
        "huge_len": _pq.raw_host_call(2, 0, 0x7fffffff, 16),
        "negative": _pq.raw_host_call(1, -1, -1, -1),
        "bad_result_ptr": _pq.raw_host_call(1, 0, 0, -4),
        "unknown_op": _pq.raw_host_call(999, 0, 0, 16),
        "take_nothing": _pq.raw_take_result(0, 12345),
    }
    source_len = len(_pq.call(3))
    _pq.raw_host_call(3, 0, 0, 16)
    r["take_to_bad_ptr"] = _pq.raw_take_result(-5, source_len)
    r["take_wrong_len"] = _pq.raw_take_result(0, source_len + 1)
    for op, arg in [(4, b"\xff\x00"), (4, b'{"status": 200}'), (6, b"[]"), (16, b"nope"), (77, b"")]:
        try:
            _pq.call(op, arg)
            r[f"op{op}"] = "accepted"
        except _pq.HostError as e:
            r[f"op{op}"] = e.args[0]
    return r
"#;
    let body = run_json(script).await;
    assert_eq!(body["ptr_past_memory"], -1);
    assert_eq!(body["huge_len"], -2);
    // Too large, but the error's length cannot be written to address -1: a fault.
    assert_eq!(body["negative"], -1);
    assert_eq!(body["bad_result_ptr"], -1);
    assert_eq!(body["unknown_op"], -3);
    assert_eq!(body["take_nothing"], -6);
    assert_eq!(body["take_to_bad_ptr"], -1);
    assert_eq!(body["take_wrong_len"], -6);
    assert_eq!(body["op4"], -4);
    assert_eq!(body["op6"], -4);
    assert_eq!(body["op16"], -4);
    assert_eq!(body["op77"], -3);
    assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn os_exit_ends_only_that_instance() {
    assert_eq!(
        run_err("import os\ndef handler():\n    os._exit(3)\n").await,
        CallErrorKind::Exited(3)
    );
    match run_err("import sys\ndef handler():\n    sys.exit(4)\n").await {
        CallErrorKind::Exception(report) => {
            assert_eq!(report.kind, pubfn::host::error_report::ReportKind::Exit)
        }
        other => panic!("expected SystemExit, got {other:?}"),
    }
    assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_stdout_is_truncated_and_marked() {
    let limits = Limits {
        output_bytes: 1000,
        ..Limits::default()
    };
    let reply = run_limited(
        "def handler():\n    for _ in range(10000): print('x' * 100)\n    return 1\n",
        limits,
    )
    .await
    .unwrap();
    assert!(reply.output.len() < 1100, "{}", reply.output.len());
    assert!(reply.output.ends_with(pubfn::host::log::TRUNCATION_MARK));
}

#[tokio::test(flavor = "multi_thread")]
async fn response_body_over_the_limit_is_refused() {
    let limits = Limits {
        response_body_bytes: 1000,
        ..Limits::default()
    };
    let err = run_limited("def handler():\n    return 'x' * 5000\n", limits)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, CallErrorKind::BadReturn(m) if m.contains("limit")),
        "{:?}",
        err.kind
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn script_without_handler_is_reported() {
    let kind = run_err("x = 1\n").await;
    assert!(matches!(kind, CallErrorKind::NoHandler(_)), "{kind:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn breaking_the_driver_only_breaks_that_call() {
    let script = "import pq._driver, json\ndef handler():\n    pq._driver._response.to_json = None\n    json.dumps = None\n    return {'a': 1}\n";
    let reply = run(script).await;
    assert!(reply.is_err());
    assert_still_serving().await;
}
