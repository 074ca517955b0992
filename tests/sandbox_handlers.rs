//! What handlers see and what becomes of what they return.

#[path = "common/sandbox.rs"]
mod common;

use common::{call, get, run, run_err, run_json, sandbox};
use pubfn::host::GuestRequest;
use pubfn::sandbox::CallErrorKind;

#[tokio::test(flavor = "multi_thread")]
async fn flask_style_request_has_flask_attributes() {
    let script = r#"
def handler():
    return {
        "method": request.method, "url": request.url, "path": request.path,
        "query_string": repr(request.query_string), "args": request.args,
        "ua": request.headers.get("USER-AGENT"), "ct": request.headers["content-type"],
        "multi": request.headers.getlist("x-multi"),
        "data": repr(request.data), "get_data": request.get_data(as_text=True),
        "form": request.form, "view_args": request.view_args,
        "remote_addr": request.remote_addr,
    }
"#;
    let request = GuestRequest {
        method: "POST".into(),
        url: "https://example.test/acme/items/7?a=1&b=two".into(),
        path: "/items/7".into(),
        query_string: "a=1&b=two".into(),
        headers: vec![
            ("User-Agent".into(), b"curl/8".to_vec()),
            (
                "Content-Type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            ("X-Multi".into(), b"1".to_vec()),
            ("X-Multi".into(), b"2".to_vec()),
        ],
        path_params: [("id".to_string(), "7".to_string())].into(),
        body: b"name=Ada&lang=py".to_vec(),
        warehouse: None,
        remote_addr: "203.0.113.9".into(),
    };
    let reply = sandbox()
        .handle(call("alpha", "flask", script, request))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.response.body).unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["url"], "https://example.test/acme/items/7?a=1&b=two");
    assert_eq!(body["path"], "/items/7");
    assert_eq!(body["query_string"], "b'a=1&b=two'");
    assert_eq!(body["args"], serde_json::json!({"a": "1", "b": "two"}));
    assert_eq!(body["ua"], "curl/8");
    assert_eq!(body["ct"], "application/x-www-form-urlencoded");
    assert_eq!(body["multi"], serde_json::json!(["1", "2"]));
    // As in Flask: a form body's fields are in `form`, and `data` is empty; get_data() is raw.
    assert_eq!(body["data"], "b''");
    assert_eq!(body["remote_addr"], "203.0.113.9");
    assert_eq!(body["get_data"], "name=Ada&lang=py");
    assert_eq!(
        body["form"],
        serde_json::json!({"name": "Ada", "lang": "py"})
    );
    assert_eq!(body["view_args"], serde_json::json!({"id": "7"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_json_parses_a_json_body() {
    let script = "def handler():\n    return {'got': request.get_json(), 'json': request.json}\n";
    let mut request = get("/j", "");
    request.method = "POST".into();
    request.headers = vec![("content-type".into(), b"application/json".to_vec())];
    request.body = br#"{"x": [1, 2]}"#.to_vec();
    let reply = sandbox()
        .handle(call("alpha", "json", script, request))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.response.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"got": {"x": [1, 2]}, "json": {"x": [1, 2]}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_taking_request_gets_a_dict_of_strings() {
    let script = r#"
def handler(request):
    return {k: request[k] for k in ("method", "url", "path", "query_string", "headers", "data", "form")}
"#;
    let mut request = get("/d", "q=1");
    request.headers = vec![("X-Token".into(), b"abc".to_vec())];
    request.body = b"hello".to_vec();
    let reply = sandbox()
        .handle(call("alpha", "dict", script, request))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.response.body).unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/d");
    assert_eq!(body["query_string"], "q=1");
    assert_eq!(body["headers"], serde_json::json!({"X-Token": "abc"}));
    assert_eq!(body["data"], "hello");
    assert_eq!(body["form"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn dict_becomes_json_with_dates_decimals_and_uuids() {
    let script = r#"
import datetime, decimal, uuid
def handler():
    return {"d": datetime.date(2026, 11, 28), "dt": datetime.datetime(2026, 1, 2, 3, 4, 5),
            "n": decimal.Decimal("1.5"), "i": decimal.Decimal("10"),
            "u": uuid.UUID(int=1), "t": (1, 2), "s": "é"}
"#;
    let reply = run(script).await.unwrap();
    assert_eq!(reply.response.status, 200);
    assert_eq!(
        reply.response.headers,
        vec![("content-type".into(), "application/json".into())]
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.response.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"d": "2026-11-28", "dt": "2026-01-02T03:04:05", "n": 1.5, "i": 10,
            "u": "00000000-0000-0000-0000-000000000001", "t": [1, 2], "s": "é"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn str_bytes_and_none_map_to_their_content_types() {
    let reply = run("def handler():\n    return 'hi'\n").await.unwrap();
    assert_eq!(reply.response.headers[0].1, "text/plain; charset=utf-8");
    assert_eq!(reply.response.body, b"hi");

    let reply = run("def handler():\n    return b'\\x00\\x01'\n")
        .await
        .unwrap();
    assert_eq!(reply.response.headers[0].1, "application/octet-stream");
    assert_eq!(reply.response.body, [0, 1]);

    let reply = run("def handler():\n    return None\n").await.unwrap();
    assert_eq!(reply.response.status, 204);
    assert!(reply.response.body.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn tuples_set_status_and_headers() {
    let reply = run("def handler():\n    return {'error': 'nope'}, 404\n")
        .await
        .unwrap();
    assert_eq!(reply.response.status, 404);
    assert_eq!(reply.response.body, br#"{"error":"nope"}"#);

    let script =
        "def handler():\n    return 'made', 201, {'X-Id': '7', 'Content-Type': 'text/csv'}\n";
    let reply = run(script).await.unwrap();
    assert_eq!(reply.response.status, 201);
    assert_eq!(
        reply.response.headers,
        vec![
            ("x-id".to_string(), "7".to_string()),
            ("content-type".into(), "text/csv".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_status_is_a_bad_return() {
    let kind = run_err("def handler():\n    return 'x', 42\n").await;
    assert!(
        matches!(&kind, CallErrorKind::BadReturn(m) if m.contains("200 to 599")),
        "{kind:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn header_injection_from_a_handler_is_refused() {
    let kind =
        run_err("def handler():\n    return 'x', 200, {'X-A': 'v\\r\\nSet-Cookie: s=1'}\n").await;
    assert!(
        matches!(&kind, CallErrorKind::BadReturn(m) if m.contains("control characters")),
        "{kind:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_is_captured_per_call() {
    let reply = run("import sys\ndef handler():\n    print('out')\n    print('err', file=sys.stderr)\n    return 1\n")
        .await
        .unwrap();
    assert_eq!(reply.output, "out\nerr\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn dbconnect_without_a_database_says_so() {
    let script = r#"
import pq
def handler():
    try:
        pq.dbconnect('dw_2')
    except pq.DatabaseNotConfigured as e:
        return {"error": str(e)}
"#;
    let body = run_json(script).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no database configured"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preloaded_modules_are_in_the_snapshot() {
    let script = r#"
import sys
def handler():
    wanted = ["pq", "json", "re", "datetime", "decimal", "urllib.parse", "base64", "hashlib"]
    return {m: m in sys.modules for m in wanted}
"#;
    let body = run_json(script).await;
    for (module, loaded) in body.as_object().unwrap() {
        assert_eq!(loaded, true, "{module} is not preloaded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stdlib_modules_outside_the_snapshot_import_from_the_readonly_lib() {
    let body = run_json("def handler():\n    import zlib, statistics\n    return [zlib.crc32(b'a'), statistics.mean([1, 3])]\n").await;
    assert_eq!(body, serde_json::json!([3904355907u32, 2]));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_script_reports_syntax_errors_without_running_code() {
    let limits = pubfn::sandbox::Limits::default();
    let ok = sandbox()
        .check_script(
            "alpha",
            None,
            "raise SystemExit\ndef handler(): pass\n".into(),
            &limits,
        )
        .await;
    assert!(ok.is_ok(), "module code must not run: {ok:?}");
    let err = sandbox()
        .check_script("alpha", None, "def handler(:\n".into(), &limits)
        .await
        .unwrap_err();
    match err.kind {
        CallErrorKind::Syntax(report) => {
            assert_eq!((report.line, report.column), (Some(1), Some(13)))
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}
