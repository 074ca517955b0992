//! The admin API under `/admin/v1`, JSON throughout. Callers are the operator (the admin key)
//! or a tenant admin (a tenant token with the admin claim), who reaches only its own tenant.

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::respond::{Body, Problem};
use super::router::json_response;
use super::server::read_body;
use crate::auth::{AuthError, TokenRequest, jwt};
use crate::control::model::{EndpointSpec, TenantLimits};
use crate::control::route::RoutePattern;
use crate::sandbox::{CallErrorKind, Script};

pub mod openapi;
mod run;
mod sample;
mod tenant_data;
mod try_call;

/// Largest admin request body (scripts included).
const MAX_ADMIN_BODY: usize = 4 << 20;

/// Who is calling.
#[derive(Debug, PartialEq, Eq)]
enum Caller {
    Operator,
    TenantAdmin(String),
}

impl Caller {
    fn may_manage(&self, tenant: &str) -> Result<(), Problem> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(own) if own == tenant => Ok(()),
            Caller::TenantAdmin(_) => Err(AuthError::Forbidden("not your tenant".into()).into()),
        }
    }

    fn operator_only(&self) -> Result<(), Problem> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(_) => Err(AuthError::Forbidden("operator only".into()).into()),
        }
    }
}

/// Serves `/admin/v1/{path...}`.
pub async fn handle(
    state: &AppState,
    request: Request<Incoming>,
    path: &[String],
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    if path.len() == 1 && path[0] == "openapi.json" && request.method() == Method::GET {
        // The API's description is public: tools fetch it before they have credentials.
        let mut response = Response::new(Body::from(openapi::DOCUMENT));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let caller = authenticate(state, &request, path).await?;
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or("").to_string();
    let read = read_body(request, MAX_ADMIN_BODY, state.server_limits.body_timeout).await?;
    let body = read.body;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let ok = |value: serde_json::Value| Ok(json_response(StatusCode::OK, &value));
    if let Some(outcome) = tenant_data::handle(state, &caller, &method, &p, &body).await {
        return outcome;
    }
    match (&method, p.as_slice()) {
        (&Method::POST, ["tenants"]) => {
            caller.operator_only()?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct NewTenant {
                name: String,
                #[serde(default, deserialize_with = "crate::control::model::object")]
                limits: TenantLimits,
            }
            let new: NewTenant = parse(&body)?;
            new.limits.validate().map_err(Problem::BadRequest)?;
            let tenant = state.store.create_tenant(&new.name, new.limits).await?;
            state.registry.invalidate(&tenant.name);
            // Build the tenant's interpreter snapshot now rather than on its first request.
            let (sandbox, name) = (state.sandbox.clone(), tenant.name.clone());
            tokio::spawn(async move {
                if let Err(e) = sandbox.prepare_tenant(&name).await {
                    tracing::error!(tenant = %name, "building the tenant's snapshot: {e}");
                }
            });
            Ok(json_response(StatusCode::CREATED, &json!(tenant)))
        }
        (&Method::GET, ["tenants"]) => {
            caller.operator_only()?;
            ok(json!(state.store.list_tenants().await?))
        }
        (&Method::GET, ["tenants", t]) => {
            caller.may_manage(t)?;
            ok(json!(state.store.tenant(t).await?))
        }
        (&Method::PUT, ["tenants", t, "limits"]) => {
            caller.operator_only()?;
            let limits: TenantLimits = parse(&body)?;
            limits.validate().map_err(Problem::BadRequest)?;
            let tenant = state.store.set_tenant_limits(t, limits).await?;
            state.registry.invalidate(t);
            ok(json!(tenant))
        }
        (&Method::DELETE, ["tenants", t]) => {
            caller.operator_only()?;
            state.store.delete_tenant(t).await?;
            state.registry.invalidate(t);
            state.pools.forget_tenant(t);
            state.sandbox.forget_tenant(t).await;
            Ok(no_content())
        }
        (&Method::PUT, ["tenants", t, "endpoints", name]) => {
            caller.may_manage(t)?;
            let spec: EndpointSpec = parse(&body)?;
            deploy(state, t, name, spec).await
        }
        (&Method::GET, ["tenants", t, "endpoints"]) => {
            caller.may_manage(t)?;
            state.store.tenant(t).await?;
            ok(json!(state.store.endpoints(t, false).await?))
        }
        (&Method::GET, ["tenants", t, "endpoints", name]) => {
            caller.may_manage(t)?;
            ok(json!(state.store.endpoint(t, name).await?))
        }
        (&Method::DELETE, ["tenants", t, "endpoints", name]) => {
            caller.may_manage(t)?;
            state.store.delete_endpoint(t, name).await?;
            state.registry.invalidate(t);
            Ok(no_content())
        }
        (&Method::GET, ["tenants", t, "endpoints", name, "logs"]) => {
            caller.may_manage(t)?;
            let (limit, since) = log_query(&query)?;
            state.store.endpoint(t, name).await?;
            ok(json!(state.store.logs(t, name, limit, since).await?))
        }
        (&Method::GET, ["tenants", t, "endpoints", name, "versions"]) => {
            caller.may_manage(t)?;
            ok(json!(state.store.versions(t, name).await?))
        }
        (&Method::POST, ["tenants", t, "endpoints", name, "rollback"]) => {
            caller.may_manage(t)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rollback {
                version: i32,
            }
            let rollback: Rollback = parse(&body)?;
            let endpoint = state.store.rollback(t, name, rollback.version).await?;
            state.registry.invalidate(t);
            ok(json!(endpoint))
        }
        (&Method::POST, ["tenants", t, "run"]) => {
            caller.may_manage(t)?;
            run::run(state, t, &body).await
        }
        (&Method::POST, ["tenants", t, "try"]) => {
            caller.may_manage(t)?;
            try_call::try_call(state, t, &body, request_id).await
        }
        (&Method::POST, ["tenants", t, "tokens"]) => {
            caller.may_manage(t)?;
            let request: TokenRequest = parse(&body)?;
            request.validate().map_err(Problem::BadRequest)?;
            if request.admin {
                caller.operator_only()?;
            }
            create_token(state, t, request).await
        }
        (&Method::GET, ["tenants", t, "tokens"]) => {
            caller.may_manage(t)?;
            state.store.tenant(t).await?;
            ok(json!(state.store.tokens(t).await?))
        }
        (&Method::DELETE, ["tenants", t, "tokens", jti]) => {
            caller.may_manage(t)?;
            state.store.revoke_token(t, jti).await?;
            state.registry.invalidate(t);
            Ok(no_content())
        }
        _ => match openapi::allowed_methods(&p) {
            Some(allowed) => Err(Problem::MethodNotAllowed(allowed)),
            None => Err(Problem::NotFound("no such admin route".into())),
        },
    }
}

async fn deploy(
    state: &AppState,
    tenant: &str,
    name: &str,
    mut spec: EndpointSpec,
) -> Result<Response<Body>, Problem> {
    spec.method = spec.method.to_ascii_uppercase();
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if !METHODS.contains(&spec.method.as_str()) {
        return Err(Problem::BadRequest(format!(
            "method {:?}: one of {}",
            spec.method,
            METHODS.join(", ")
        )));
    }
    spec.limits
        .validate(state.sandbox.max_memory_bytes())
        .map_err(Problem::BadRequest)?;
    RoutePattern::parse(&spec.route)?;
    state.store.tenant(tenant).await?;
    // Compile in the tenant's own sandbox before accepting: a syntax error never deploys.
    match state
        .sandbox
        .check_script(tenant, Script::new(spec.script.as_str()), &spec.limits)
        .await
    {
        Ok(()) => {}
        Err(error) => {
            return Err(match error.kind {
                CallErrorKind::Syntax(report) => Problem::ScriptSyntax {
                    message: report.message.clone(),
                    line: report.line,
                    column: report.column,
                },
                other => Problem::BadRequest(format!("the script cannot be compiled: {other}")),
            });
        }
    }
    let version = state.store.deploy(tenant, name, &spec).await?;
    state.registry.invalidate(tenant);
    Ok(json_response(
        StatusCode::OK,
        &json!({"tenant": tenant, "name": name, "version": version}),
    ))
}

/// A token just made: its value is shown now and never again.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Expiry, Unix seconds; `None` for a token without expiry.
    pub expires_at: Option<i64>,
}

async fn create_token(
    state: &AppState,
    tenant: &str,
    request: TokenRequest,
) -> Result<Response<Body>, Problem> {
    let issued = issue_token(state, tenant, request).await?;
    Ok(json_response(StatusCode::CREATED, &json!(issued)))
}

/// Makes and records a token for `tenant`.
pub async fn issue_token(
    state: &AppState,
    tenant: &str,
    request: TokenRequest,
) -> Result<IssuedToken, Problem> {
    let secrets = state
        .store
        .tenant_secrets(tenant)
        .await?
        .ok_or_else(|| Problem::NotFound(format!("no tenant {tenant:?}")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let exp = if request.no_expiry {
        None
    } else {
        let lifetime = request
            .expires_in
            .unwrap_or(jwt::DEFAULT_LIFETIME_SECS)
            .min(10 * 365 * 24 * 3600);
        Some(now + lifetime as i64)
    };
    let mut jti = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
    let claims = jwt::Claims {
        iss: jwt::ISSUER.into(),
        aud: tenant.into(),
        sub: request.name.clone(),
        jti: hex::encode(jti),
        iat: now,
        nbf: now,
        exp,
        admin: request.admin,
        endpoints: request.endpoints.clone(),
    };
    let token = jwt::issue(&secrets.jwt_secret, &claims)?;
    let record = crate::control::model::TokenRecord {
        jti: claims.jti.clone(),
        name: request.name,
        admin: request.admin,
        endpoints: request.endpoints,
        created_at: String::new(),
        expires_at: None,
        revoked_at: None,
    };
    state.store.insert_token(tenant, &record, exp).await?;
    Ok(IssuedToken {
        token,
        jti: claims.jti,
        expires_at: exp,
    })
}

async fn authenticate(
    state: &AppState,
    request: &Request<Incoming>,
    path: &[String],
) -> Result<Caller, Problem> {
    let header = request.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    let token = jwt::bearer_token(header)?;
    if constant_time_eq(token.as_bytes(), state.admin_key.as_bytes()) {
        return Ok(Caller::Operator);
    }
    // A tenant admin token names its tenant in `aud`; it must match the tenant in the path.
    let tenant =
        jwt::claimed_tenant(token).ok_or_else(|| AuthError::Invalid("malformed".into()))?;
    let view = state
        .registry
        .tenant(&tenant)
        .await?
        .ok_or_else(|| AuthError::Invalid("unknown tenant".into()))?;
    let claims = state.verify_token(&view, token).await?;
    if !claims.admin {
        return Err(
            AuthError::Forbidden("data-plane tokens cannot call the admin API".into()).into(),
        );
    }
    if let [first, t, ..] = path
        && first == "tenants"
        && *t != claims.aud
    {
        return Err(AuthError::Forbidden("not your tenant".into()).into());
    }
    Ok(Caller::TenantAdmin(claims.aud))
}

/// `?limit=N&since=ID` of the logs call: at most 1,000 entries, 100 by default.
fn log_query(query: &str) -> Result<(i64, Option<i64>), Problem> {
    let (mut limit, mut since) = (100, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
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
        match key {
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

/// Compares secrets without leaking where they differ through timing.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
