//! Admin routes for what a tenant's handlers reach besides their request: its databases
//! (`/tenants/{t}/databases/{name}`, operator only) and its secrets (`/tenants/{t}/secrets/{name}`,
//! whose values are never returned).

use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, no_content, parse};
use crate::http::AppState;
use crate::http::respond::{Body, Problem};
use crate::http::router::json_response;

/// Serves the route if it is one of these; `None` otherwise.
pub(super) async fn handle(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> Option<Result<Response<Body>, Problem>> {
    match path {
        ["tenants", t, "databases", ..] => {
            Some(databases(state, caller, method, t, path, body).await)
        }
        ["tenants", t, "secrets", ..] => Some(secrets(state, caller, method, t, path, body).await),
        _ => None,
    }
}

async fn databases(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    t: &str,
    path: &[&str],
    body: &[u8],
) -> Result<Response<Body>, Problem> {
    match (method, path) {
        (&Method::PUT, ["tenants", _, "databases", name]) => {
            caller.operator_only()?;
            // `{}`: a managed database; `{"url": "postgresql://..."}`: an external one.
            let new: serde_json::Map<String, serde_json::Value> = parse(body)?;
            if let Some(unknown) = new.keys().find(|k| *k != "url") {
                return Err(Problem::BadRequest(format!("unknown field {unknown:?}")));
            }
            let url = match new.get("url") {
                None => None,
                Some(serde_json::Value::String(url)) => Some(url.clone()),
                Some(_) => return Err(Problem::BadRequest("url must be a string".into())),
            };
            let database = match url {
                None => state.store.add_managed_database(t, name).await?,
                Some(url) => state.store.add_external_database(t, name, &url).await?,
            };
            state.registry.invalidate(t);
            Ok(json_response(StatusCode::CREATED, &json!(database)))
        }
        (&Method::GET, ["tenants", _, "databases"]) => {
            caller.may_manage(t)?;
            state.store.tenant(t).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!(state.store.databases(t).await?),
            ))
        }
        (&Method::GET, ["tenants", _, "databases", name]) => {
            caller.may_manage(t)?;
            state.store.tenant(t).await?;
            let database = state
                .store
                .databases(t)
                .await?
                .into_iter()
                .find(|d| d.name == *name)
                .ok_or_else(|| {
                    Problem::NotFound(format!("tenant {t:?} has no database {name:?}"))
                })?;
            Ok(json_response(StatusCode::OK, &json!(database)))
        }
        (&Method::DELETE, ["tenants", _, "databases", name]) => {
            caller.operator_only()?;
            state.store.remove_database(t, name).await?;
            state.registry.invalidate(t);
            state.pools.forget_tenant(t);
            Ok(no_content())
        }
        _ => Err(method_not_allowed(path)),
    }
}

async fn secrets(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    t: &str,
    path: &[&str],
    body: &[u8],
) -> Result<Response<Body>, Problem> {
    caller.may_manage(t)?;
    match (method, path) {
        (&Method::PUT, ["tenants", _, "secrets", name]) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct NewSecret {
                value: String,
            }
            let new: NewSecret = parse(body)?;
            let secret = state.store.set_secret(t, name, &new.value).await?;
            state.registry.invalidate(t);
            Ok(json_response(StatusCode::OK, &json!(secret)))
        }
        (&Method::GET, ["tenants", _, "secrets"]) => Ok(json_response(
            StatusCode::OK,
            &json!(state.store.secrets(t).await?),
        )),
        (&Method::DELETE, ["tenants", _, "secrets", name]) => {
            state.store.delete_secret(t, name).await?;
            state.registry.invalidate(t);
            Ok(no_content())
        }
        _ => Err(method_not_allowed(path)),
    }
}

/// A known path with another method is a 405; anything else a 404.
fn method_not_allowed(path: &[&str]) -> Problem {
    match super::openapi::allowed_methods(path) {
        Some(allowed) => Problem::MethodNotAllowed(allowed),
        None => Problem::NotFound("no such admin route".into()),
    }
}
