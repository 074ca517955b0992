//! Handlers' outbound HTTP end to end: a real `pubfn serve`, real handlers using `urllib`,
//! `http.client`, `requests` and `pq.connect`, and a local HTTPS upstream signed by a test CA
//! that counts what reaches it, so every refusal is shown to send nothing.

#[path = "common/server.rs"]
mod common;
#[path = "common/upstream.rs"]
mod upstream;
#[path = "common/warehouse.rs"]
mod warehouse;

use common::{Server, admin, deploy, fresh_database, tenant_with_endpoint};
use serde_json::{Value, json};
use upstream::Upstream;
use warehouse::{bearer, get, last_log};

/// Calls `url` the way `?via=` says and answers what happened, exceptions included.
const FETCH: &str = r#"
import json, http.client, urllib.request, urllib.error, urllib.parse
import requests

def handler():
    via, url = request.args['via'], request.args.get('url', '')
    try:
        if via == 'urllib':
            with urllib.request.urlopen(url, timeout=20) as r:
                return {'status': r.status, 'body': json.loads(r.read())}
        if via == 'http.client':
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=20)
            conn.request('POST', parts.path, body=b'{"a": 1}', headers={'Content-Type': 'application/json'})
            r = conn.getresponse()
            return {'status': r.status, 'body': json.loads(r.read())}
        if via == 'requests':
            r = requests.post(url, params={'q': 'x y'}, json={'k': 'v'}, headers={'X-Test': 'yes'}, timeout=20)
            return {'status': r.status_code, 'body': r.json(), 'cookie': r.cookies.get('session')}
        if via == 'connect':
            return pq.connect('crm').apicall(request.args['path'], method='post', body={'k': 'v'}, params={'page': 2})
        if via == 'connect_get':
            return pq.connect('crm').get('text')
    except urllib.error.URLError as e:
        return {'error': 'URLError', 'reason': type(e.reason).__name__,
                'permission': isinstance(e.reason, PermissionError), 'message': str(e.reason)}
    except requests.exceptions.ConnectionError as e:
        cause = e.args[0] if e.args else None
        return {'error': type(e).__name__, 'reason': type(cause).__name__,
                'permission': isinstance(cause, PermissionError), 'message': str(e)}
    except Exception as e:
        return {'error': type(e).__name__, 'permission': isinstance(e, PermissionError),
                'timeout': isinstance(e, TimeoutError), 'message': str(e)}
"#;

async fn egress_server(extra: &[&str], upstream: &Upstream, db: &str) -> Server {
    let ca = upstream.ca_file.to_str().unwrap().to_string();
    let mut args = vec!["--egress-ca-file", ca.as_str()];
    args.extend_from_slice(extra);
    Server::start(Some(db), &args)
}

async fn call(server: &Server, auth: &str, tenant: &str, query: &[(&str, &str)]) -> Value {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let reply = get(server, &format!("/{tenant}/fetch?{query}"), auth).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        last_log(server, tenant, "fetch").await
    );
    reply.json()
}

async fn allow(server: &Server, tenant: &str, entries: Value) -> Value {
    let reply = admin(
        server,
        "PUT",
        &format!("/tenants/{tenant}/egress"),
        json!({"allow": entries}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_hosts_answer_urllib_http_client_requests_and_connections() {
    let upstream = Upstream::start().await;
    let db = fresh_database("egressok").await;
    let server = egress_server(&["--egress-allow-loopback"], &upstream, &db).await;
    tenant_with_endpoint(&server, "out", "fetch", "/fetch", FETCH).await;
    let auth = bearer(&server, "out").await;
    let json_url = upstream.https("/json");

    // Deny by default: the request never leaves the machine.
    let denied = call(
        &server,
        &auth,
        "out",
        &[("via", "urllib"), ("url", &json_url)],
    )
    .await;
    assert_eq!(denied["error"], "URLError", "{denied}");
    assert_eq!(denied["permission"], true, "{denied}");
    assert_eq!(upstream.hits(), 0);

    let entry = format!("localhost:{}", upstream.https_port);
    assert_eq!(
        allow(&server, "out", json!([entry.to_uppercase()])).await,
        json!({"allow": [entry]})
    );
    let r = call(
        &server,
        &auth,
        "out",
        &[("via", "urllib"), ("url", &json_url)],
    )
    .await;
    assert_eq!(
        (r["status"].clone(), r["body"]["method"].clone()),
        (json!(200), json!("GET")),
        "{r}"
    );
    let r = call(
        &server,
        &auth,
        "out",
        &[("via", "http.client"), ("url", &json_url)],
    )
    .await;
    assert_eq!(r["body"]["method"], "POST", "{r}");
    assert_eq!(r["body"]["body"], r#"{"a": 1}"#, "{r}");
    let r = call(
        &server,
        &auth,
        "out",
        &[("via", "requests"), ("url", &json_url)],
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["body"]["query"], "q=x+y", "{r}");
    assert_eq!(r["body"]["headers"]["x-test"], "yes", "{r}");
    assert_eq!(r["body"]["body"], r#"{"k": "v"}"#, "{r}");
    assert_eq!(r["cookie"], "abc", "{r}");

    // A stored connection adds its credentials; they are never listed back.
    let put = admin(
        &server,
        "PUT",
        "/tenants/out/connections/crm",
        json!({"base_url": upstream.https(""), "headers": {"X-Api-Key": "k-123"}, "query": {"token": "t-9"}}),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let listed = admin(&server, "GET", "/tenants/out/connections", json!(null)).await;
    assert_eq!(listed.status, 200);
    assert!(
        !String::from_utf8_lossy(&listed.body).contains("k-123"),
        "{:?}",
        listed.body
    );
    assert_eq!(listed.json()[0]["name"], "crm");
    let r = call(
        &server,
        &auth,
        "out",
        &[("via", "connect"), ("path", "/json")],
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["detail"]["headers"]["x-api-key"], "k-123", "{r}");
    assert_eq!(r["detail"]["query"], "page=2&token=t-9", "{r}");
    assert_eq!(r["detail"]["method"], "POST", "{r}");
    let r = call(&server, &auth, "out", &[("via", "connect_get")]).await;
    assert_eq!(r["detail"], "hello from upstream", "{r}");

    // The handler's log and Server-Timing show the calls, never their headers.
    let reply = get(&server, "/out/fetch?via=connect&path=%2Fjson", &auth).await;
    let timing = reply
        .header("server-timing")
        .unwrap_or_default()
        .to_string();
    assert!(timing.contains("egress;dur="), "{timing}");
    // Log entries are written in batches: wait for this request's, the one with the POST.
    let post = format!("[egress] POST localhost:{} -> 200", upstream.https_port);
    let log = common::eventually(
        "the connection call's log entry",
        std::time::Duration::from_secs(10),
        || async {
            let log = last_log(&server, "out", "fetch").await;
            log.contains(&post).then_some(log)
        },
    )
    .await;
    assert!(!log.contains("k-123"), "{log}");
    let (_, metrics) = common::scrape(&server, common::ADMIN_KEY).await;
    assert!(
        metrics.contains(r#"pubfn_egress_requests_total{tenant="out",result="ok"}"#)
            && metrics.contains(r#"pubfn_egress_requests_total{tenant="out",result="denied"} 1"#)
            && metrics.contains("pubfn_egress_response_bytes_total{tenant=\"out\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_destinations_send_nothing() {
    let upstream = Upstream::start().await;
    let db = fresh_database("egressdeny").await;
    let server = egress_server(&["--egress-allow-loopback"], &upstream, &db).await;
    tenant_with_endpoint(&server, "deny", "fetch", "/fetch", FETCH).await;
    let auth = bearer(&server, "deny").await;
    let port = upstream.https_port;
    // Everything below is on the list, so each refusal comes from the address rules.
    allow(
        &server,
        "deny",
        json!([
            format!("localhost:{port}"),
            "169.254.169.254",
            "http://169.254.169.254",
            format!("[::1]:{port}"),
            format!("0.0.0.0:{port}"),
            format!("127.0.0.1:{port}")
        ]),
    )
    .await;
    let refused = [
        format!("https://other.example:{port}/json"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        format!("https://[::1]:{port}/json"),
        format!("https://0.0.0.0:{port}/json"),
        format!("https://127.0.0.1:{port}/json"),
        format!("https://2130706433:{port}/json"),
        format!("https://0177.0.0.1:{port}/json"),
        format!("https://[::ffff:127.0.0.1]:{port}/json"),
    ];
    for url in &refused {
        for via in ["urllib", "requests"] {
            let r = call(&server, &auth, "deny", &[("via", via), ("url", url)]).await;
            assert_eq!(r["permission"], true, "{via} {url}: {r}");
            assert!(
                r["message"].as_str().unwrap().contains("not allowed"),
                "{via} {url}: {r}"
            );
            assert_eq!(upstream.hits(), 0, "{via} {url} reached the upstream: {r}");
        }
    }
    let r = call(
        &server,
        &auth,
        "deny",
        &[("via", "urllib"), ("url", &refused[0])],
    )
    .await;
    assert_eq!(r["permission"], true, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("other.example"),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap().contains("not allowed"),
        "{r}"
    );
    let r = call(
        &server,
        &auth,
        "deny",
        &[("via", "requests"), ("url", &refused[1])],
    )
    .await;
    assert_eq!(
        (r["error"].clone(), r["reason"].clone()),
        (json!("ConnectionError"), json!("EgressDenied")),
        "{r}"
    );

    // A redirect to a host off the list is refused at that hop: one request reached us.
    let evil = "https://evil.example/steal";
    let to_evil = format!("{}?to={}", upstream.https("/redirect"), urlencode(evil));
    let r = call(
        &server,
        &auth,
        "deny",
        &[("via", "requests"), ("url", &to_evil)],
    )
    .await;
    assert_eq!(r["permission"], true, "{r}");
    assert_eq!(upstream.hits(), 1);

    // Without --egress-allow-loopback an allow-listed name resolving to loopback is refused.
    let strict = egress_server(&[], &upstream, &fresh_database("egressstrict").await).await;
    tenant_with_endpoint(&strict, "deny", "fetch", "/fetch", FETCH).await;
    allow(&strict, "deny", json!([format!("localhost:{port}")])).await;
    let auth = bearer(&strict, "deny").await;
    let r = call(
        &strict,
        &auth,
        "deny",
        &[("via", "urllib"), ("url", &upstream.https("/json"))],
    )
    .await;
    assert_eq!(r["permission"], true, "{r}");
    assert!(r["message"].as_str().unwrap().contains("loopback"), "{r}");
    assert_eq!(upstream.hits(), 1);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_huge_upstreams_end_at_the_limits_and_spare_other_tenants() {
    let upstream = Upstream::start().await;
    let db = fresh_database("egresslimits").await;
    let server = egress_server(&["--egress-allow-loopback"], &upstream, &db).await;
    tenant_with_endpoint(
        &server,
        "other",
        "hello",
        "/hello",
        "def handler():\n    return 'hi'\n",
    )
    .await;
    admin(&server, "POST", "/tenants", json!({"name": "greedy"})).await;
    deploy(
        &server,
        "greedy",
        "fetch",
        json!({"method": "GET", "route": "/fetch", "script": FETCH,
               "limits": {"wall_ms": 3000, "egress_response_bytes": 1 << 20}}),
    )
    .await;
    allow(
        &server,
        "greedy",
        json!([format!("localhost:{}", upstream.https_port)]),
    )
    .await;
    let auth = bearer(&server, "greedy").await;
    let other = bearer(&server, "other").await;

    // 100 MiB ends at the 1 MiB cap, as an exception the handler can catch.
    let big = upstream.https("/big");
    let r = call(
        &server,
        &auth,
        "greedy",
        &[("via", "requests"), ("url", &big)],
    )
    .await;
    assert_eq!(r["error"], "ConnectionError", "{r}");
    assert!(r["message"].as_str().unwrap().contains("limit"), "{r}");

    // An upstream that never answers ends at the call's wall limit, while another tenant is
    // served meanwhile.
    let slow = format!(
        "/greedy/fetch?via=urllib&url={}",
        urlencode(&upstream.https("/slow"))
    );
    let pending = {
        let (base, auth) = (server.base.clone(), auth.clone());
        tokio::spawn(async move {
            common::request(
                "GET",
                &format!("{base}{slow}"),
                &[("authorization", &auth)],
                b"",
            )
            .await
        })
    };
    let hello = get(&server, "/other/hello", &other).await;
    assert_eq!(hello.status, 200);
    let reply = pending.await.unwrap();
    assert!(reply.status == 504 || reply.status == 200, "{reply:?}");
    if reply.status == 200 {
        assert_eq!(reply.json()["timeout"], true, "{reply:?}");
    }
    assert_eq!(get(&server, "/other/hello", &other).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_allow_list_and_connections_are_managed_and_sealed() {
    let db = fresh_database("egressadmin").await;
    let server = Server::start(Some(&db), &[]);
    admin(&server, "POST", "/tenants", json!({"name": "acme"})).await;
    let shown = admin(&server, "GET", "/tenants/acme/egress", json!(null)).await;
    assert_eq!((shown.status, shown.json()), (200, json!({"allow": []})));
    let bad = admin(
        &server,
        "PUT",
        "/tenants/acme/egress",
        json!({"allow": ["ok.example", "x.com/path"]}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        String::from_utf8_lossy(&bad.body).contains("x.com/path"),
        "{:?}",
        bad.body
    );
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));

    // A tenant admin reads the list, but only the operator changes it.
    let tenant_admin = common::token(&server, "acme", json!({"name": "adm", "admin": true})).await;
    let auth = format!("Bearer {tenant_admin}");
    let url = format!("{}/admin/v1/tenants/acme/egress", server.admin_base);
    let read = common::request("GET", &url, &[("authorization", &auth)], b"").await;
    assert_eq!(read.status, 200, "{read:?}");
    let write = common::request(
        "PUT",
        &url,
        &[("authorization", &auth)],
        br#"{"allow": ["*"]}"#,
    )
    .await;
    assert_eq!(write.status, 403, "{write:?}");

    let bad_connection = admin(
        &server,
        "PUT",
        "/tenants/acme/connections/crm",
        json!({"base_url": "https://user:pw@crm.example"}),
    )
    .await;
    assert_eq!(bad_connection.status, 400);
    let put = admin(
        &server,
        "PUT",
        "/tenants/acme/connections/crm",
        json!({"base_url": "https://crm.example/v3", "headers": {"Authorization": "Bearer very-secret-crm-token"}}),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let rows = common::connect(&db)
        .await
        .query(
            "SELECT encode(sealed, 'escape') || base_url FROM pubfn.tenant_connections",
            &[],
        )
        .await
        .unwrap();
    let stored: String = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    assert!(
        !stored.contains("very-secret-crm-token"),
        "stored in the clear"
    );
    let deleted = admin(
        &server,
        "DELETE",
        "/tenants/acme/connections/crm",
        json!(null),
    )
    .await;
    assert_eq!(deleted.status, 204);
    let again = admin(
        &server,
        "DELETE",
        "/tenants/acme/connections/crm",
        json!(null),
    )
    .await;
    assert_eq!(again.status, 404);
}
