//! pubfn's `request` against Flask's own: one probe handler run by Flask 3.1 (from PyPI, in
//! tests/flask/.venv, which scripts/setup installs) and by pubfn over HTTP, on the same
//! requests, member by member. The only differences allowed are the documented ones: the URL's
//! host and prefix (the probe reports what follows `/probe`).

#[path = "common/server.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use common::{Server, admin, deploy, fresh_database, request};
use serde_json::{Value, json};

/// Reads every member a Flask handler uses, each guarded so one failure names itself.
const PROBE: &str = r#"
def handler():
    out = {}
    def read(name, f):
        try:
            out[name] = f()
        except Exception as e:
            out[name] = '!' + type(e).__name__
    # The raw body first: Flask caches it then, so form parsing still sees it.
    read('get_data', lambda: request.get_data().decode('latin-1'))
    read('get_data_text', lambda: request.get_data(as_text=True))
    read('method', lambda: request.method)
    read('path', lambda: request.path)
    read('full_path', lambda: request.full_path)
    read('url_tail', lambda: request.url.split('/probe', 1)[1])
    read('base_url_tail', lambda: request.base_url.split('/probe', 1)[1])
    read('scheme', lambda: request.scheme)
    read('query_string', lambda: request.query_string.decode('latin-1'))
    read('args', lambda: request.args.to_dict(flat=False))
    read('args_flat', lambda: request.args.to_dict())
    read('args_first', lambda: request.args.get('a'))
    read('args_list', lambda: request.args.getlist('a'))
    read('args_int', lambda: request.args.get('n', -1, type=int))
    read('args_bad_int', lambda: request.args.get('c', -1, type=int))
    read('args_missing', lambda: request.args['missing'])
    read('args_in', lambda: ['a' in request.args, 'zz' in request.args, len(request.args)])
    read('values', lambda: request.values.to_dict(flat=False))
    read('form', lambda: request.form.to_dict(flat=False))
    read('form_first', lambda: request.form.get('a'))
    read('files', lambda: {k: [f.filename, f.content_type, f.read().decode('latin-1')]
                           for k, f in request.files.items()})
    read('cookies', lambda: request.cookies.to_dict())
    read('content_type', lambda: request.content_type)
    read('mimetype', lambda: request.mimetype)
    read('content_length', lambda: request.content_length)
    read('is_json', lambda: request.is_json)
    read('data', lambda: request.data.decode('latin-1'))
    read('json_silent', lambda: request.get_json(silent=True))
    read('remote_addr', lambda: request.remote_addr)
    read('user_agent', lambda: [request.user_agent.string, str(request.user_agent)])
    read('authorization', lambda: None if request.authorization is None else
         [request.authorization.type, request.authorization.username,
          request.authorization.password, request.authorization.token])
    read('header_get', lambda: request.headers.get('X-One'))
    read('header_item', lambda: request.headers['x-one'])
    read('header_list', lambda: request.headers.getlist('X-Two'))
    read('header_names', lambda: sorted(k for k, _ in request.headers if k.startswith('X-')))
    if request.args.get('strict'):
        return {'json': request.json}
    return out
"#;

/// One request: method, path and query, headers, body.
fn case(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let mut all = vec![("User-Agent", "probe/1.0")];
    all.extend_from_slice(headers);
    json!({
        "method": method,
        "path": path,
        "headers": all,
        "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
    })
}

fn cases() -> Vec<Value> {
    let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello \xc3\xa9\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nsecond\r\n--XyZ--\r\n";
    vec![
        case(
            "GET",
            "/probe?a=1&a=2&b=&c=%C3%A9+x&n=42",
            &[("X-One", "one"), ("X-Two", "2")],
            b"",
        ),
        case(
            "GET",
            "/probe",
            &[
                ("Cookie", "s=abc; t=\"q v\"; empty="),
                ("Authorization", "Basic dXNlcjpwYXNzOndvcmQ="),
            ],
            b"",
        ),
        case(
            "POST",
            "/probe?a=q",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"a=1&a=2&empty=&sp=x+y%21",
        ),
        case(
            "POST",
            "/probe",
            &[("Content-Type", "multipart/form-data; boundary=XyZ")],
            multipart,
        ),
        case(
            "POST",
            "/probe",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer tok123"),
            ],
            br#"{"k": [1, 2], "s": "\u00e9"}"#,
        ),
        case(
            "POST",
            "/probe",
            &[("Content-Type", "application/octet-stream")],
            b"\x00\x01\xff",
        ),
        case(
            "PUT",
            "/probe",
            &[("Content-Type", "text/plain; charset=utf-8")],
            "héllo".as_bytes(),
        ),
        // request.json on a malformed body: 400; on a body that is not JSON: 415.
        case(
            "POST",
            "/probe?strict=1",
            &[("Content-Type", "application/json")],
            b"{nope",
        ),
        case(
            "POST",
            "/probe?strict=1",
            &[("Content-Type", "text/plain")],
            b"x",
        ),
    ]
}

/// What Flask answers to each case.
fn flask_answers(cases: &[Value]) -> Vec<Value> {
    let flask = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flask");
    let python = format!("{flask}/.venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "Flask is missing: run scripts/setup (it installs tests/flask/requirements.txt)"
    );
    let mut child = Command::new(python)
        .arg(format!("{flask}/probe.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"script": PROBE, "requests": cases});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pubfn_request_answers_as_flask_does() {
    let cases = cases();
    let expected = flask_answers(&cases);
    let db = fresh_database("flaskdiff").await;
    let server = Server::start(Some(&db), &[]);
    assert_eq!(
        admin(&server, "POST", "/tenants", json!({"name": "flask"}))
            .await
            .status,
        201
    );
    for method in ["GET", "POST", "PUT"] {
        deploy(
            &server,
            "flask",
            &format!("probe-{}", method.to_lowercase()),
            json!({"method": method, "route": "/probe", "script": PROBE, "auth": "public"}),
        )
        .await;
    }
    let mut differences = Vec::new();
    for (case, flask) in cases.iter().zip(&expected) {
        let path = format!("/flask{}", case["path"].as_str().unwrap());
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(case["body_base64"].as_str().unwrap())
            .unwrap();
        let method = case["method"].as_str().unwrap();
        let reply = request(method, &format!("{}{path}", server.base), &headers, &body).await;
        let ours = json!({
            "status": reply.status,
            "json": if reply.status == 200 { reply.json() } else { Value::Null },
        });
        let theirs = json!({
            "status": flask["status"],
            "json": if flask["status"] == 200 { flask["json"].clone() } else { Value::Null },
        });
        if ours["status"] != theirs["status"] {
            differences.push(format!(
                "{method} {path}: status {} (Flask {})",
                ours["status"], theirs["status"]
            ));
            continue;
        }
        for (member, value) in theirs["json"].as_object().into_iter().flatten() {
            if ours["json"][member] != *value {
                differences.push(format!(
                    "{method} {path}: {member} = {} (Flask {value})",
                    ours["json"][member]
                ));
            }
        }
        if reply.status >= 400 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
