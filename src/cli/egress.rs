//! `pubfn egress ...` and `pubfn connection ...`: where tenants' handlers may send HTTP, and
//! the stored connections (`pq.connect(name)`) that carry their credentials.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::admin_client::{ServerArgs, call};
use super::manage::finish;
use super::resources::read_value;

/// `pubfn egress ...`
#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Replace a tenant's egress allow-list (operator only). No entries: nothing allowed.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Hosts its handlers may call: `api.example.com`, `*.example.org`,
        /// `hooks.example.net:8443`, `http://legacy.example.com`, or `*`.
        entries: Vec<String>,
    },
    /// Show a tenant's egress allow-list.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

/// `pubfn connection ...`
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Set a stored connection from JSON `{"base_url", "headers": {...}, "query": {...}}` on
    /// standard input (or --from-file), so credentials stay off the command line.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The connection's name, as pq.connect(NAME) takes it.
        name: String,
        /// Read the JSON from this file instead of standard input.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List a tenant's connections (names and base URLs only).
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Delete a connection.
    Remove {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The connection.
        name: String,
    },
}

/// Runs an egress verb.
pub async fn egress(server: ServerArgs, command: EgressCommand) -> ExitCode {
    finish(match command {
        EgressCommand::Set { tenant, entries } => {
            let path = format!("/tenants/{tenant}/egress");
            call(&server, "PUT", &path, Some(json!({"allow": entries}))).await
        }
        EgressCommand::Show { tenant } => {
            let path = format!("/tenants/{tenant}/egress");
            call(&server, "GET", &path, None).await
        }
    })
}

/// Runs a connection verb.
pub async fn connection(server: ServerArgs, command: ConnectionCommand) -> ExitCode {
    finish(match command {
        ConnectionCommand::Set {
            tenant,
            name,
            from_file,
        } => match read_value(from_file).and_then(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("the connection is not JSON: {e}"))
        }) {
            Ok(spec) => {
                let path = format!("/tenants/{tenant}/connections/{name}");
                call(&server, "PUT", &path, Some(spec)).await
            }
            Err(e) => Err(e),
        },
        ConnectionCommand::List { tenant } => {
            let path = format!("/tenants/{tenant}/connections");
            call(&server, "GET", &path, None).await
        }
        ConnectionCommand::Remove { tenant, name } => {
            let path = format!("/tenants/{tenant}/connections/{name}");
            call(&server, "DELETE", &path, None).await
        }
    })
}
