//! The data plane end to end: a real server on 127.0.0.1, a real PostgreSQL, a real client.

#[path = "common/server.rs"]
mod common;

use common::{
    Server, admin, deploy, fresh_database, request, tenant_secret, tenant_with_endpoint, token,
};
use serde_json::json;

const HELLO: &str = "def handler():\n    return {'hello': request.args.get('name', 'world')}\n";

fn assert_problem(reply: &common::Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(reply.json()["status"], status);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_of_the_error_table() {
    let db = fresh_database("statuses").await;
    let server = Server::start(Some(&db), &["--tenant-max-body-bytes", "1000"]);
    let base = &server.base;
    assert_eq!(
        request("GET", &format!("{base}/healthz"), &[], b"")
            .await
            .status,
        200
    );

    tenant_with_endpoint(&server, "acme", "hello", "/hello/{who}", HELLO).await;
    let t = token(&server, "acme", json!({"name": "client"})).await;
    let auth = format!("Bearer {t}");
    let ok = request(
        "GET",
        &format!("{base}/acme/hello/x?name=Ada"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"hello": "Ada"}));
    assert!(ok.header("x-request-id").is_some());
    let jwt_scheme = format!("JWT {t}");
    assert_eq!(
        request(
            "GET",
            &format!("{base}/acme/hello/x"),
            &[("authorization", &jwt_scheme)],
            b""
        )
        .await
        .status,
        200
    );

    assert_problem(
        &request(
            "GET",
            &format!("{base}/nobody/hello/x"),
            &[("authorization", &auth)],
            b"",
        )
        .await,
        404,
    );
    assert_problem(
        &request(
            "GET",
            &format!("{base}/acme/nothing"),
            &[("authorization", &auth)],
            b"",
        )
        .await,
        404,
    );
    let wrong_method = request(
        "DELETE",
        &format!("{base}/acme/hello/x"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_problem(&wrong_method, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    let missing = request("GET", &format!("{base}/acme/hello/x"), &[], b"").await;
    assert_problem(&missing, 401);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let too_big = vec![b'x'; 5000];
    deploy(
        &server,
        "acme",
        "upload",
        json!({"method": "POST", "route": "/upload", "script": HELLO}),
    )
    .await;
    assert_problem(
        &request(
            "POST",
            &format!("{base}/acme/upload"),
            &[("authorization", &auth)],
            &too_big,
        )
        .await,
        413,
    );

    let raising =
        "def handler():\n    secret_variable = 1\n    raise ValueError('secret detail')\n";
    deploy(
        &server,
        "acme",
        "boom",
        json!({"method": "GET", "route": "/boom", "script": raising}),
    )
    .await;
    let boom = request(
        "GET",
        &format!("{base}/acme/boom"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_problem(&boom, 500);
    let text = String::from_utf8_lossy(&boom.body);
    assert!(
        !text.contains("secret") && !text.contains("Traceback"),
        "{text}"
    );
    assert_eq!(
        boom.json()["request_id"],
        boom.header("x-request-id").unwrap()
    );

    deploy(
        &server,
        "acme",
        "set",
        json!({"method": "GET", "route": "/set", "script": "def handler():\n    return {1}\n"}),
    )
    .await;
    assert_problem(
        &request(
            "GET",
            &format!("{base}/acme/set"),
            &[("authorization", &auth)],
            b"",
        )
        .await,
        502,
    );

    let spin = json!({"method": "GET", "route": "/spin", "script": "def handler():\n    while True: pass\n",
                      "limits": {"cpu_ms": 200}});
    deploy(&server, "acme", "spin", spin).await;
    assert_problem(
        &request(
            "GET",
            &format!("{base}/acme/spin"),
            &[("authorization", &auth)],
            b"",
        )
        .await,
        504,
    );

    tenant_with_endpoint(&server, "other", "hello", "/hello", HELLO).await;
    let other = format!(
        "Bearer {}",
        token(&server, "other", json!({"name": "o"})).await
    );
    assert_problem(
        &request(
            "GET",
            &format!("{base}/acme/hello/x"),
            &[("authorization", &other)],
            b"",
        )
        .await,
        403,
    );
    let scoped = format!(
        "Bearer {}",
        token(&server, "acme", json!({"name": "s", "endpoints": ["boom"]})).await
    );
    assert_problem(
        &request(
            "GET",
            &format!("{base}/acme/hello/x"),
            &[("authorization", &scoped)],
            b"",
        )
        .await,
        403,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_cap_answers_429_with_retry_after() {
    let db = fresh_database("concurrency").await;
    let server = Server::start(
        Some(&db),
        &[
            "--tenant-max-concurrency",
            "1",
            common::METRICS_ARGS[0],
            common::METRICS_ARGS[1],
        ],
    );
    let slow = "import time\ndef handler():\n    time.sleep(1.5)\n    return 'done'\n";
    tenant_with_endpoint(&server, "busy", "slow", "/slow", slow).await;
    let auth = format!(
        "Bearer {}",
        token(&server, "busy", json!({"name": "c"})).await
    );
    let url = format!("{}/busy/slow", server.base);
    let first = {
        let (url, auth) = (url.clone(), auth.clone());
        tokio::spawn(async move { request("GET", &url, &[("authorization", &auth)], b"").await })
    };
    // The first call is running (it holds the tenant's one slot) before the second is sent.
    common::wait_for_instances(&server, 1).await;
    let second = request("GET", &url, &[("authorization", &auth)], b"").await;
    assert_problem(&second, 429);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(first.await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_attacks_are_rejected() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let db = fresh_database("jwt").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "bank", "hello", "/hello", HELLO).await;
    let url = format!("{}/bank/hello", server.base);
    let secret = tenant_secret(&db, "bank").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The checks below reach past the signature only with the id of a token pubfn issued.
    let issued = token(&server, "bank", json!({"name": "real"})).await;
    let jti = pubfn::auth::jwt::verify(&issued, "bank", &secret)
        .unwrap()
        .jti;
    let claims = |aud: &str, nbf: i64, exp: i64| json!({"iss": "pubfn", "aud": aud, "sub": "x", "jti": jti, "iat": now, "nbf": nbf, "exp": exp});
    let sign = |key: &[u8], claims: &serde_json::Value| {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let good = sign(&secret, &claims("bank", now, now + 60));
    let call = |token: String| {
        let url = url.clone();
        async move {
            request(
                "GET",
                &url,
                &[("authorization", &format!("Bearer {token}"))],
                b"",
            )
            .await
            .status
        }
    };
    assert_eq!(
        call(good.clone()).await,
        200,
        "a correctly signed token with an issued id works"
    );
    let mut never_issued = claims("bank", now, now + 60);
    never_issued["jti"] = json!("forged");
    assert_eq!(
        call(sign(&secret, &never_issued)).await,
        401,
        "a correctly signed token with an id pubfn never issued"
    );

    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    assert_eq!(call(alg_none).await, 401, "alg none");
    let rs_header = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    assert_eq!(call(rs_header).await, 401, "RS/HS confusion");
    assert_eq!(
        call(sign(
            common::ADMIN_KEY.as_bytes(),
            &claims("bank", now, now + 60)
        ))
        .await,
        401,
        "admin key as secret"
    );
    assert_eq!(
        call(sign(&[7u8; 32], &claims("bank", now, now + 60))).await,
        401,
        "another secret"
    );
    assert_eq!(
        call(sign(&secret, &claims("bank", now - 600, now - 300))).await,
        401,
        "expired"
    );
    assert_eq!(
        call(sign(&secret, &claims("bank", now + 300, now + 600))).await,
        401,
        "not yet valid"
    );
    assert_eq!(
        call(sign(&secret, &claims("elsewhere", now, now + 60))).await,
        401,
        "wrong aud"
    );
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims("bank", now, now + 99_999)),
        parts[2]
    );
    assert_eq!(call(tampered).await, 401, "tampered payload");
    let basic = request(
        "GET",
        &url,
        &[("authorization", "Basic YWRtaW46YWRtaW4=")],
        b"",
    )
    .await;
    assert_eq!(basic.status, 401, "Basic scheme");

    let issued = admin(
        &server,
        "POST",
        "/tenants/bank/tokens",
        json!({"name": "r"}),
    )
    .await
    .json();
    let revocable = issued["token"].as_str().unwrap().to_string();
    assert_eq!(call(revocable.clone()).await, 200);
    let jti = issued["jti"].as_str().unwrap();
    assert_eq!(
        admin(
            &server,
            "DELETE",
            &format!("/tenants/bank/tokens/{jti}"),
            json!(null)
        )
        .await
        .status,
        204
    );
    assert_eq!(call(revocable).await, 401, "revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_endpoints_need_no_token() {
    let db = fresh_database("public").await;
    let server = Server::start(Some(&db), &[]);
    admin(&server, "POST", "/tenants", json!({"name": "open"})).await;
    let spec = json!({"method": "POST", "route": "/echo", "auth": "public",
                      "script": "def handler(request):\n    return {'got': request['data'], 'ct': request['headers'].get('content-type')}\n"});
    deploy(&server, "open", "echo", spec).await;
    let reply = request(
        "POST",
        &format!("{}/open/echo", server.base),
        &[("content-type", "text/plain")],
        b"hi",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json(), json!({"got": "hi", "ct": "text/plain"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn body_cap_is_per_tenant() {
    let db = fresh_database("tenantcaps").await;
    let server = Server::start(Some(&db), &[]);
    let created = admin(
        &server,
        "POST",
        "/tenants",
        json!({"name": "tiny", "limits": {"max_body_bytes": 10}}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let echo = json!({"method": "POST", "route": "/echo", "auth": "public",
                      "script": "def handler():\n    return request.data\n"});
    deploy(&server, "tiny", "echo", echo.clone()).await;
    admin(&server, "POST", "/tenants", json!({"name": "roomy"})).await;
    deploy(&server, "roomy", "echo", echo).await;
    let body = [b'x'; 20];
    assert_eq!(
        request("POST", &format!("{}/tiny/echo", server.base), &[], &body)
            .await
            .status,
        413
    );
    assert_eq!(
        request("POST", &format!("{}/roomy/echo", server.base), &[], &body)
            .await
            .status,
        200
    );
    let raised = admin(
        &server,
        "PUT",
        "/tenants/tiny/limits",
        json!({"max_body_bytes": 100}),
    )
    .await;
    assert_eq!(raised.status, 200, "{:?}", raised.body);
    assert_eq!(
        request("POST", &format!("{}/tiny/echo", server.base), &[], &body)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_are_cut_off_and_health_stays_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = fresh_database("slowloris").await;
    let server = Server::start(Some(&db), &["--header-timeout-ms", "500"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408) instead of waiting forever.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(
        request("GET", &format!("{}/healthz", server.base), &[], b"")
            .await
            .status,
        200
    );
    let many_headers: Vec<(String, String)> =
        (0..200).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .uri("/healthz")
        .header("host", "x");
    for (k, v) in &refs {
        builder = builder.header(*k, *v);
    }
    let response = sender
        .send_request(
            builder
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await;
    let response = response.expect("the server answers rather than dropping the connection");
    assert_eq!(response.status(), 431, "too many headers are refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_verifies_a_token_without_running_python() {
    let db = fresh_database("whoami").await;
    let server = Server::start(Some(&db), &[]);
    tenant_with_endpoint(&server, "who", "e", "/e", "def handler():\n    return 1\n").await;
    let alice = token(&server, "who", json!({"name": "alice"})).await;
    let url = format!("{}/who/_whoami", server.base);
    let ok = request(
        "GET",
        &url,
        &[("authorization", &format!("Bearer {alice}"))],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["sub"], "alice");
    assert_eq!(ok.json()["tenant"], "who");
    assert_eq!(request("GET", &url, &[], b"").await.status, 401);
    let reserved = admin(
        &server,
        "PUT",
        "/tenants/who/endpoints/w",
        json!({"method": "GET", "route": "/_whoami", "script": "def handler():\n    return 1\n"}),
    )
    .await;
    assert_eq!(reserved.status, 400, "{:?}", reserved.body);
}
