//! The admin API under `/admin/v1`, JSON throughout: find the route in the table, know the
//! caller, parse the body, call the use case, answer. Callers are the operator (the admin
//! key) or a tenant admin (a tenant token with the admin claim); `app` decides who may do what.

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use super::respond::{Body, Problem};
use super::router::json_response;
use super::server::read_body;
use crate::auth::{TokenRequest, jwt};
use crate::control::model::{EndpointSpec, TenantLimits};

mod drafts;
pub mod openapi;
mod routes;
mod sample;
mod try_call;

use routes::Op;

/// Largest admin request body (scripts included).
const MAX_ADMIN_BODY: usize = 4 << 20;

/// Largest wheel upload: a wheel is compressed, and what it unpacks to is held to the
/// tenant's package quota separately.
const MAX_WHEEL_BODY: usize = 128 << 20;

/// Serves `/admin/v1/{path...}`.
pub async fn handle(
    state: &HttpState,
    request: Request<Incoming>,
    path: &[String],
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let (op, params) = routes::find(request.method(), path)?;
    if op == Op::OpenApi {
        // The API's description is public: tools fetch it before they have credentials.
        let mut response = Response::new(Body::from(openapi::DOCUMENT));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let app = &state.app;
    let header = request.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    let caller = app.admin_caller(jwt::bearer_token(header)?).await?;
    // A tenant admin names its own tenant in the path, or is refused before anything else.
    if !params.tenant.is_empty() {
        caller.may_manage(&params.tenant)?;
    }
    let query = request.uri().query().unwrap_or("").to_string();
    if op == Op::PutWheel {
        // A wheel is sent as it is (application/octet-stream), not in JSON.
        let wheel = read_body(request, MAX_WHEEL_BODY, state.server_limits.body_timeout)
            .await?
            .body;
        let installed = app
            .put_wheel(&caller, &params.tenant, &params.name, wheel.to_vec())
            .await?;
        return Ok(json_response(StatusCode::OK, &json!(installed)));
    }
    if op == Op::LoadCsv {
        let csv = body_stream(request.into_body(), state.server_limits.body_timeout);
        let loaded = app
            .load_csv(&caller, &params.tenant, &params.name, &params.table, csv)
            .await?;
        return Ok(json_response(StatusCode::OK, &json!(loaded)));
    }
    let body = read_body(request, MAX_ADMIN_BODY, state.server_limits.body_timeout)
        .await?
        .body;
    let (t, name) = (params.tenant.as_str(), params.name.as_str());
    let ok = |value: serde_json::Value| Ok(json_response(StatusCode::OK, &value));
    match op {
        Op::OpenApi | Op::LoadCsv | Op::PutWheel => unreachable!("answered above"),
        Op::RunSql => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Script {
                sql: String,
            }
            let script: Script = parse(&body)?;
            ok(json!(app.run_sql(&caller, t, name, &script.sql).await?))
        }
        Op::CreateTenant => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct NewTenant {
                name: String,
                #[serde(default, deserialize_with = "crate::control::model::object")]
                limits: TenantLimits,
            }
            let new: NewTenant = parse(&body)?;
            let tenant = app.create_tenant(&caller, &new.name, new.limits).await?;
            Ok(json_response(StatusCode::CREATED, &json!(tenant)))
        }
        Op::ListTenants => ok(json!(app.list_tenants(&caller).await?)),
        Op::GetTenant => ok(json!(app.tenant(&caller, t).await?)),
        Op::SetTenantLimits => {
            let limits: TenantLimits = parse(&body)?;
            ok(json!(app.set_tenant_limits(&caller, t, limits).await?))
        }
        Op::DeleteTenant => {
            app.delete_tenant(&caller, t).await?;
            Ok(no_content())
        }
        Op::Deploy => {
            let spec: EndpointSpec = parse(&body)?;
            let version = app.deploy(&caller, t, name, spec).await?;
            ok(json!({"tenant": t, "name": name, "version": version}))
        }
        Op::ListEndpoints => ok(json!(app.endpoints(&caller, t).await?)),
        Op::GetEndpoint => ok(json!(app.endpoint(&caller, t, name).await?)),
        Op::DeleteEndpoint => {
            app.delete_endpoint(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::ListVersions => ok(json!(app.versions(&caller, t, name).await?)),
        Op::Rollback => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rollback {
                version: i32,
            }
            let rollback: Rollback = parse(&body)?;
            ok(json!(
                app.rollback(&caller, t, name, rollback.version).await?
            ))
        }
        Op::EndpointLogs => {
            let (limit, since) = log_query(&query)?;
            ok(json!(app.logs(&caller, t, name, limit, since).await?))
        }
        Op::TenantUsage => {
            let (from, to) = usage_query(&query)?;
            ok(json!(
                app.usage(&caller, t, from.as_deref(), to.as_deref())
                    .await?
            ))
        }
        Op::ListReplays => ok(json!(app.recordings(&caller, t).await?)),
        Op::GetReplay => ok(json!(app.recording(&caller, t, &params.request_id).await?)),
        Op::ReplaySecrets => ok(json!({
            "secrets": app.recording_secrets(&caller, t, &params.request_id).await?
        })),
        Op::ReplayPackages => ok(json!(
            app.recording_packages(&caller, t, &params.request_id)
                .await?
        )),
        Op::RunDraft => drafts::run(app, &caller, t, &body).await,
        Op::TryEndpoint => try_call::try_call(state, t, &body, request_id).await,
        Op::IssueToken => {
            let request: TokenRequest = parse(&body)?;
            let issued = app.issue_token(&caller, t, request).await?;
            Ok(json_response(StatusCode::CREATED, &json!(issued)))
        }
        Op::ListTokens => ok(json!(app.tokens(&caller, t).await?)),
        Op::RevokeToken => {
            app.revoke_token(&caller, t, &params.jti).await?;
            Ok(no_content())
        }
        Op::PutDatabase => {
            // `{}`: a managed database; `{"url": "postgresql://..."}`: an external one.
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct NewDatabase {
                url: Option<String>,
                ca_pem: Option<String>,
            }
            let new: NewDatabase = parse(&body)?;
            let database = app
                .add_database(&caller, t, name, new.url.as_deref(), new.ca_pem.as_deref())
                .await?;
            Ok(json_response(StatusCode::CREATED, &json!(database)))
        }
        Op::ListDatabases => ok(json!(app.databases(&caller, t).await?)),
        Op::GetDatabase => ok(json!(app.database(&caller, t, name).await?)),
        Op::DeleteDatabase => {
            app.remove_database(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::PutSecret => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct NewSecret {
                value: String,
            }
            let new: NewSecret = parse(&body)?;
            ok(json!(app.set_secret(&caller, t, name, &new.value).await?))
        }
        Op::ListSecrets => ok(json!(app.secrets(&caller, t).await?)),
        Op::DeleteSecret => {
            app.delete_secret(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::PutEgress => {
            let spec: crate::egress::policy::EgressSpec = parse(&body)?;
            ok(json!({"allow": app.set_egress(&caller, t, &spec.allow).await?}))
        }
        Op::GetEgress => ok(json!({"allow": app.egress(&caller, t).await?})),
        Op::PutConnection => {
            let spec: crate::control::store::ConnectionSpec = parse(&body)?;
            ok(json!(app.put_connection(&caller, t, name, &spec).await?))
        }
        Op::ListConnections => ok(json!(app.connections(&caller, t).await?)),
        Op::DeleteConnection => {
            app.delete_connection(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::GetPackages => ok(json!(app.packages(&caller, t).await?)),
        Op::ListModules => ok(json!(app.packages(&caller, t).await?.modules)),
        Op::PutModule => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Module {
                source: String,
            }
            let module: Module = parse(&body)?;
            ok(json!(
                app.put_module(&caller, t, name, module.source).await?
            ))
        }
        Op::GetModule => ok(json!(app.module(&caller, t, name).await?)),
        Op::DeleteModule => {
            app.delete_module(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::ListWheels => ok(json!(app.wheels(&caller, t).await?)),
        Op::GetWheel => ok(json!(app.wheel(&caller, t, name).await?)),
        Op::DeleteWheel => {
            app.delete_wheel(&caller, t, name).await?;
            Ok(no_content())
        }
        Op::PutPreload => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Preload {
                modules: Vec<String>,
            }
            let preload: Preload = parse(&body)?;
            ok(json!({"modules": app.set_preload(&caller, t, preload.modules).await?}))
        }
        Op::GetPreload => ok(json!({"modules": app.preload(&caller, t).await?})),
    }
}

/// Largest CSV a load takes, in bytes.
const MAX_CSV_BYTES: usize = 1 << 30;

/// A streamed request body: at most [`MAX_CSV_BYTES`], and each piece within `idle` of the
/// last (a client that stops sending does not hold the load open).
fn body_stream(
    body: Incoming,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, crate::BoxError>> + Unpin {
    use http_body_util::BodyExt;
    let data = http_body_util::Limited::new(body, MAX_CSV_BYTES).into_data_stream();
    Box::pin(futures_util::stream::unfold(
        data,
        move |mut data| async move {
            use futures_util::StreamExt;
            match tokio::time::timeout(idle, data.next()).await {
                Ok(Some(item)) => Some((item, data)),
                Ok(None) => None,
                Err(_) => Some((Err("the body stopped arriving".into()), data)),
            }
        },
    ))
}

/// `?from=&to=` of the usage call: RFC 3339 times, both optional.
fn usage_query(query: &str) -> Result<(Option<String>, Option<String>), Problem> {
    let (mut from, mut to) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(value.into_owned()),
            "to" => to = Some(value.into_owned()),
            _ => {
                return Err(Problem::BadRequest(format!(
                    "unknown query parameter {key:?}"
                )));
            }
        }
    }
    Ok((from, to))
}

/// `?limit=N&since=ID` of the logs call: at most 1,000 entries, 100 by default.
fn log_query(query: &str) -> Result<(i64, Option<i64>), Problem> {
    let (mut limit, mut since) = (100, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        // Digits only; a number too large for i64 means "as many as there are".
        let number = || {
            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<i64>().unwrap_or(i64::MAX))
                .ok_or_else(|| {
                    Problem::BadRequest(format!(
                        "{key} must be a non-negative integer, not {value:?}"
                    ))
                })
        };
        match key.as_ref() {
            "limit" => limit = number()?.min(1_000),
            "since" => since = Some(number()?),
            _ => {
                return Err(Problem::BadRequest(format!(
                    "unknown query parameter {key:?}"
                )));
            }
        }
    }
    Ok((limit, since))
}

/// Parses a JSON body. A number like `30.0` counts as the integer it is, as JSON Schema has it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let invalid = |e: serde_json::Error| Problem::BadRequest(format!("invalid JSON body: {e}"));
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(Problem::BadRequest(
            "invalid JSON body: expected an object".into(),
        ));
    }
    integral_floats_to_integers(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *value = if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
