//! `pubfn tenant|endpoint|token ...`: the admin API from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::admin_client::{ServerArgs, call, print};

/// `pubfn tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Its name: lower-case letters, digits and '-'.
        name: String,
    },
    /// List tenants.
    List,
    /// Delete a tenant and everything it owns.
    Delete {
        /// The tenant.
        name: String,
    },
}

/// `pubfn endpoint ...`
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Compile and deploy a script as an endpoint (a new version if it exists).
    Deploy {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The endpoint's name.
        name: String,
        /// Route below the tenant, e.g. /accounts/{id}.
        #[arg(long)]
        route: String,
        /// HTTP method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The handler script.
        #[arg(long)]
        script: PathBuf,
        /// Callable without a token (the handler does its own authentication).
        #[arg(long)]
        public: bool,
        /// Reuse instances between requests (globals persist) instead of strict isolation.
        #[arg(long, conflicts_with = "strict")]
        warm: bool,
        /// A fresh instance per request (the default).
        #[arg(long)]
        strict: bool,
        /// A JSON Schema file the request body must match (checked before the handler runs).
        #[arg(long)]
        request_schema: Option<PathBuf>,
        /// A JSON Schema file of the response body, for the tenant's OpenAPI document.
        #[arg(long)]
        response_schema: Option<PathBuf>,
    },
    /// List a tenant's endpoints.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Show an endpoint with its script.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The endpoint.
        name: String,
    },
    /// Serve an older version again.
    Rollback {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The endpoint.
        name: String,
        /// The version to serve.
        #[arg(long)]
        version: i32,
    },
    /// Delete an endpoint and its versions.
    Delete {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The endpoint.
        name: String,
    },
}

/// `pubfn token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token (printed once).
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A name for people.
        name: String,
        /// Lifetime in seconds.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Limit it to these endpoints (repeatable).
        #[arg(long = "endpoint")]
        endpoints: Vec<String>,
        /// No expiry (server-side use).
        #[arg(long)]
        no_expiry: bool,
        /// A tenant admin token.
        #[arg(long)]
        admin: bool,
    },
    /// List a tenant's tokens (never their values).
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token.
    Revoke {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The token's id.
        jti: String,
    },
}

/// Runs a tenant verb.
pub async fn tenant(server: ServerArgs, command: TenantCommand) -> ExitCode {
    finish(match command {
        TenantCommand::Create { name } => {
            call(&server, "POST", "/tenants", Some(json!({"name": name}))).await
        }
        TenantCommand::List => call(&server, "GET", "/tenants", None).await,
        TenantCommand::Delete { name } => {
            call(&server, "DELETE", &format!("/tenants/{name}"), None).await
        }
    })
}

/// The JSON in `file`.
fn read_json(file: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", file.display()))
}

/// Runs an endpoint verb.
pub async fn endpoint(server: ServerArgs, command: EndpointCommand) -> ExitCode {
    finish(match command {
        EndpointCommand::Deploy {
            tenant,
            name,
            route,
            method,
            script,
            public,
            warm,
            strict: _,
            request_schema,
            response_schema,
        } => {
            let spec = (|| {
                let source = std::fs::read_to_string(&script)
                    .map_err(|e| format!("cannot read {}: {e}", script.display()))?;
                let mut spec = json!({"method": method, "route": route, "script": source,
                        "auth": if public { "public" } else { "jwt" },
                        "isolation": if warm { "warm" } else { "strict" }});
                for (field, file) in [
                    ("request_schema", &request_schema),
                    ("response_schema", &response_schema),
                ] {
                    if let Some(file) = file {
                        spec[field] = read_json(file)?;
                    }
                }
                Ok::<_, String>(spec)
            })();
            match spec {
                Err(e) => Err(e),
                Ok(spec) => {
                    call(
                        &server,
                        "PUT",
                        &format!("/tenants/{tenant}/endpoints/{name}"),
                        Some(spec),
                    )
                    .await
                }
            }
        }
        EndpointCommand::List { tenant } => {
            call(
                &server,
                "GET",
                &format!("/tenants/{tenant}/endpoints"),
                None,
            )
            .await
        }
        EndpointCommand::Show { tenant, name } => {
            call(
                &server,
                "GET",
                &format!("/tenants/{tenant}/endpoints/{name}"),
                None,
            )
            .await
        }
        EndpointCommand::Rollback {
            tenant,
            name,
            version,
        } => {
            let path = format!("/tenants/{tenant}/endpoints/{name}/rollback");
            call(&server, "POST", &path, Some(json!({"version": version}))).await
        }
        EndpointCommand::Delete { tenant, name } => {
            call(
                &server,
                "DELETE",
                &format!("/tenants/{tenant}/endpoints/{name}"),
                None,
            )
            .await
        }
    })
}

/// Runs a token verb.
pub async fn token(server: ServerArgs, command: TokenCommand) -> ExitCode {
    finish(match command {
        TokenCommand::Create {
            tenant,
            name,
            expires_in,
            endpoints,
            no_expiry,
            admin,
        } => {
            let endpoints = (!endpoints.is_empty()).then_some(endpoints);
            let body = json!({"name": name, "expires_in": expires_in, "endpoints": endpoints,
                              "no_expiry": no_expiry, "admin": admin});
            call(
                &server,
                "POST",
                &format!("/tenants/{tenant}/tokens"),
                Some(body),
            )
            .await
        }
        TokenCommand::List { tenant } => {
            call(&server, "GET", &format!("/tenants/{tenant}/tokens"), None).await
        }
        TokenCommand::Revoke { tenant, jti } => {
            call(
                &server,
                "DELETE",
                &format!("/tenants/{tenant}/tokens/{jti}"),
                None,
            )
            .await
        }
    })
}

/// Prints the API's answer, or the error, and picks the exit code.
pub(super) fn finish(result: Result<serde_json::Value, String>) -> ExitCode {
    match result {
        Ok(value) => {
            print(&value);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("pubfn: {message}");
            ExitCode::FAILURE
        }
    }
}
