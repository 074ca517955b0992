//! The admin API's routes as data: one table that the router dispatches on, answers 405
//! from, and that a test holds against the OpenAPI document.

use hyper::Method;

use crate::http::respond::Problem;

/// What an admin route does; each is one use case in `app`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The OpenAPI document (public).
    OpenApi,
    /// Create a tenant.
    CreateTenant,
    /// List tenants.
    ListTenants,
    /// Read a tenant.
    GetTenant,
    /// Replace a tenant's caps.
    SetTenantLimits,
    /// Delete a tenant.
    DeleteTenant,
    /// Deploy an endpoint.
    Deploy,
    /// List endpoints.
    ListEndpoints,
    /// Read an endpoint.
    GetEndpoint,
    /// Delete an endpoint.
    DeleteEndpoint,
    /// An endpoint's versions.
    ListVersions,
    /// Serve an older version.
    Rollback,
    /// An endpoint's handler logs.
    EndpointLogs,
    /// A tenant's metered usage per endpoint and hour.
    TenantUsage,
    /// A tenant's kept recordings of failed calls.
    ListReplays,
    /// One recording, for `pubfn replay`.
    GetReplay,
    /// The current values of the secrets a recorded call read (the tenant's admins only).
    ReplaySecrets,
    /// The package set a recorded call ran with, for `pubfn replay` to install.
    ReplayPackages,
    /// Run a draft.
    RunDraft,
    /// Call a deployed endpoint with a sample request.
    TryEndpoint,
    /// Issue a token.
    IssueToken,
    /// List tokens.
    ListTokens,
    /// Revoke a token.
    RevokeToken,
    /// Add a database.
    PutDatabase,
    /// List databases.
    ListDatabases,
    /// Read a database.
    GetDatabase,
    /// Remove a database.
    DeleteDatabase,
    /// Run SQL in a database, as the tenant's role.
    RunSql,
    /// Load a CSV into a table of a database.
    LoadCsv,
    /// Set a secret.
    PutSecret,
    /// List secrets.
    ListSecrets,
    /// Delete a secret.
    DeleteSecret,
    /// Replace the egress allow-list.
    PutEgress,
    /// Read the egress allow-list.
    GetEgress,
    /// Set a stored connection.
    PutConnection,
    /// List stored connections.
    ListConnections,
    /// Delete a stored connection.
    DeleteConnection,
    /// The tenant's packages at a glance.
    GetPackages,
    /// List the tenant's modules.
    ListModules,
    /// Add or replace a module.
    PutModule,
    /// Read a module with its source.
    GetModule,
    /// Remove a module.
    DeleteModule,
    /// List the tenant's wheels.
    ListWheels,
    /// Install a wheel (the body is the `.whl`).
    PutWheel,
    /// Read one wheel's record.
    GetWheel,
    /// Remove a wheel.
    DeleteWheel,
    /// Replace the preload list.
    PutPreload,
    /// Read the preload list.
    GetPreload,
}

/// One route: method and path template below `/admin/v1` (`{name}` is a parameter).
#[derive(Debug)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: &'static str,
    /// What it does.
    pub op: Op,
}

const fn route(method: Method, path: &'static str, op: Op) -> Route {
    Route { method, path, op }
}

/// Every admin route.
pub static ROUTES: &[Route] = &[
    route(Method::GET, "/openapi.json", Op::OpenApi),
    route(Method::POST, "/tenants", Op::CreateTenant),
    route(Method::GET, "/tenants", Op::ListTenants),
    route(Method::GET, "/tenants/{tenant}", Op::GetTenant),
    route(Method::DELETE, "/tenants/{tenant}", Op::DeleteTenant),
    route(Method::PUT, "/tenants/{tenant}/limits", Op::SetTenantLimits),
    route(
        Method::GET,
        "/tenants/{tenant}/endpoints",
        Op::ListEndpoints,
    ),
    route(
        Method::PUT,
        "/tenants/{tenant}/endpoints/{name}",
        Op::Deploy,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/endpoints/{name}",
        Op::GetEndpoint,
    ),
    route(
        Method::DELETE,
        "/tenants/{tenant}/endpoints/{name}",
        Op::DeleteEndpoint,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/endpoints/{name}/versions",
        Op::ListVersions,
    ),
    route(
        Method::POST,
        "/tenants/{tenant}/endpoints/{name}/rollback",
        Op::Rollback,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/endpoints/{name}/logs",
        Op::EndpointLogs,
    ),
    route(Method::GET, "/tenants/{tenant}/usage", Op::TenantUsage),
    route(Method::GET, "/tenants/{tenant}/replays", Op::ListReplays),
    route(
        Method::GET,
        "/tenants/{tenant}/replays/{request_id}",
        Op::GetReplay,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/replays/{request_id}/secrets",
        Op::ReplaySecrets,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/replays/{request_id}/packages",
        Op::ReplayPackages,
    ),
    route(Method::POST, "/tenants/{tenant}/run", Op::RunDraft),
    route(Method::POST, "/tenants/{tenant}/try", Op::TryEndpoint),
    route(Method::POST, "/tenants/{tenant}/tokens", Op::IssueToken),
    route(Method::GET, "/tenants/{tenant}/tokens", Op::ListTokens),
    route(
        Method::DELETE,
        "/tenants/{tenant}/tokens/{jti}",
        Op::RevokeToken,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/databases",
        Op::ListDatabases,
    ),
    route(
        Method::PUT,
        "/tenants/{tenant}/databases/{name}",
        Op::PutDatabase,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/databases/{name}",
        Op::GetDatabase,
    ),
    route(
        Method::DELETE,
        "/tenants/{tenant}/databases/{name}",
        Op::DeleteDatabase,
    ),
    route(
        Method::POST,
        "/tenants/{tenant}/databases/{name}/sql",
        Op::RunSql,
    ),
    route(
        Method::POST,
        "/tenants/{tenant}/databases/{name}/tables/{table}/csv",
        Op::LoadCsv,
    ),
    route(Method::GET, "/tenants/{tenant}/secrets", Op::ListSecrets),
    route(
        Method::PUT,
        "/tenants/{tenant}/secrets/{name}",
        Op::PutSecret,
    ),
    route(
        Method::DELETE,
        "/tenants/{tenant}/secrets/{name}",
        Op::DeleteSecret,
    ),
    route(Method::PUT, "/tenants/{tenant}/egress", Op::PutEgress),
    route(Method::GET, "/tenants/{tenant}/egress", Op::GetEgress),
    route(
        Method::GET,
        "/tenants/{tenant}/connections",
        Op::ListConnections,
    ),
    route(
        Method::PUT,
        "/tenants/{tenant}/connections/{name}",
        Op::PutConnection,
    ),
    route(
        Method::DELETE,
        "/tenants/{tenant}/connections/{name}",
        Op::DeleteConnection,
    ),
    route(Method::GET, "/tenants/{tenant}/packages", Op::GetPackages),
    route(Method::GET, "/tenants/{tenant}/modules", Op::ListModules),
    route(
        Method::PUT,
        "/tenants/{tenant}/modules/{name}",
        Op::PutModule,
    ),
    route(
        Method::GET,
        "/tenants/{tenant}/modules/{name}",
        Op::GetModule,
    ),
    route(
        Method::DELETE,
        "/tenants/{tenant}/modules/{name}",
        Op::DeleteModule,
    ),
    route(Method::GET, "/tenants/{tenant}/wheels", Op::ListWheels),
    route(Method::PUT, "/tenants/{tenant}/wheels/{name}", Op::PutWheel),
    route(Method::GET, "/tenants/{tenant}/wheels/{name}", Op::GetWheel),
    route(
        Method::DELETE,
        "/tenants/{tenant}/wheels/{name}",
        Op::DeleteWheel,
    ),
    route(Method::PUT, "/tenants/{tenant}/preload", Op::PutPreload),
    route(Method::GET, "/tenants/{tenant}/preload", Op::GetPreload),
];

/// A matched route's parameters.
#[derive(Debug, Default)]
pub struct Params {
    /// `{tenant}`.
    pub tenant: String,
    /// `{name}`.
    pub name: String,
    /// `{jti}`.
    pub jti: String,
    /// `{table}`.
    pub table: String,
    /// `{request_id}`.
    pub request_id: String,
}

/// The parameters `template` takes from `segments`, if it matches them.
fn matches(template: &str, segments: &[String]) -> Option<Params> {
    let parts: Vec<&str> = template.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Params::default();
    for (part, segment) in parts.iter().zip(segments) {
        match *part {
            "{tenant}" => params.tenant = segment.clone(),
            "{name}" => params.name = segment.clone(),
            "{jti}" => params.jti = segment.clone(),
            "{table}" => params.table = segment.clone(),
            "{request_id}" => params.request_id = segment.clone(),
            literal if literal == segment => {}
            _ => return None,
        }
    }
    Some(params)
}

/// The route for `method` and the path's segments below `/admin/v1`: a 405 naming the
/// allowed methods if only the method is wrong, a 404 if no route has the path.
pub fn find(method: &Method, segments: &[String]) -> Result<(Op, Params), Problem> {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = matches(route.path, segments) {
            if route.method == *method {
                return Ok((route.op, params));
            }
            allowed.push(route.method.to_string());
        }
    }
    if allowed.is_empty() {
        Err(Problem::NotFound("no such admin route".into()))
    } else {
        Err(Problem::MethodNotAllowed(allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn routes_match_with_their_parameters_and_others_are_405_or_404() {
        let (op, params) = find(&Method::PUT, &segments("/tenants/acme/endpoints/hi")).unwrap();
        assert_eq!(op, Op::Deploy);
        assert_eq!(
            (params.tenant.as_str(), params.name.as_str()),
            ("acme", "hi")
        );
        match find(&Method::POST, &segments("/tenants/acme")) {
            Err(Problem::MethodNotAllowed(allowed)) => assert_eq!(allowed, ["GET", "DELETE"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            find(&Method::GET, &segments("/nope")),
            Err(Problem::NotFound(_))
        ));
    }
}
