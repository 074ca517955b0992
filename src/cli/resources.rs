//! `pubfn db ...` and `pubfn secret ...`: what tenants' handlers reach besides their request,
//! through the admin API.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::admin_client::{ServerArgs, call};
use super::manage::finish;

/// `pubfn db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Give a tenant a database: a managed one on pubfn's cluster, or an external PostgreSQL.
    Add {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The tenant's name for it (what handlers pass to pq.dbconnect).
        name: String,
        /// An external PostgreSQL URL (stored sealed); without it, pubfn makes a managed one.
        /// Read from this file rather than the command line, where others could see it. Its
        /// `sslmode` (disable, prefer, require, verify-ca, verify-full; default verify-full
        /// for a host on another machine) says how it is reached.
        #[arg(long)]
        url_file: Option<PathBuf>,
        /// A CA certificate (PEM) the external database's certificate chains to, trusted
        /// beside the system's roots.
        #[arg(long, requires = "url_file")]
        ca_file: Option<PathBuf>,
    },
    /// List a tenant's databases.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Run SQL in a tenant's database as the tenant's own role (from a file, or standard
    /// input), and print what each statement did.
    Sql {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The database.
        name: String,
        /// The SQL script; without it, standard input.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
    },
    /// Load a CSV file into a table of a tenant's database (its header row names the
    /// columns), streamed, with progress on a terminal.
    Load {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The database.
        name: String,
        /// The table, `schema.table`.
        table: String,
        /// The CSV file.
        csv: PathBuf,
    },
    /// Remove a tenant's database (a managed one is dropped with its data).
    Remove {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The database.
        name: String,
    },
}

/// `pubfn secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret, read from standard input (or --from-file); handlers read it with
    /// pq.get_secret(NAME).
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The secret's name.
        name: String,
        /// Read the value from this file instead of standard input.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List a tenant's secrets (names only).
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Delete a secret.
    Remove {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The secret.
        name: String,
    },
}

/// Runs a database verb.
pub async fn db(server: ServerArgs, command: DbCommand) -> ExitCode {
    finish(match command {
        DbCommand::Add {
            tenant,
            name,
            url_file,
            ca_file,
        } => {
            let url = url_file.map(|path| read_value(Some(path))).transpose();
            let ca = ca_file.map(|path| read_value(Some(path))).transpose();
            let body = match (url, ca) {
                (Ok(None), _) => json!({}),
                (Ok(Some(url)), Ok(None)) => json!({"url": url}),
                (Ok(Some(url)), Ok(Some(ca))) => json!({"url": url, "ca_pem": ca}),
                (Err(e), _) | (_, Err(e)) => return finish(Err(e)),
            };
            let path = format!("/tenants/{tenant}/databases/{name}");
            call(&server, "PUT", &path, Some(body)).await
        }
        DbCommand::List { tenant } => {
            let path = format!("/tenants/{tenant}/databases");
            call(&server, "GET", &path, None).await
        }
        DbCommand::Sql { tenant, name, file } => match read_value(file) {
            Ok(sql) => {
                let path = format!("/tenants/{tenant}/databases/{name}/sql");
                call(&server, "POST", &path, Some(json!({"sql": sql}))).await
            }
            Err(e) => Err(e),
        },
        DbCommand::Load {
            tenant,
            name,
            table,
            csv,
        } => super::upload::load_csv(&server, &tenant, &name, &table, &csv).await,
        DbCommand::Remove { tenant, name } => {
            let path = format!("/tenants/{tenant}/databases/{name}");
            call(&server, "DELETE", &path, None).await
        }
    })
}

/// Runs a secret verb.
pub async fn secret(server: ServerArgs, command: SecretCommand) -> ExitCode {
    finish(match command {
        SecretCommand::Set {
            tenant,
            name,
            from_file,
        } => match read_value(from_file) {
            Ok(value) => {
                let path = format!("/tenants/{tenant}/secrets/{name}");
                call(&server, "PUT", &path, Some(json!({"value": value}))).await
            }
            Err(e) => Err(e),
        },
        SecretCommand::List { tenant } => {
            let path = format!("/tenants/{tenant}/secrets");
            call(&server, "GET", &path, None).await
        }
        SecretCommand::Remove { tenant, name } => {
            let path = format!("/tenants/{tenant}/secrets/{name}");
            call(&server, "DELETE", &path, None).await
        }
    })
}

/// A value from a file, or standard input; one trailing newline is dropped.
pub(super) fn read_value(path: Option<PathBuf>) -> Result<String, String> {
    let mut text = match &path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
            text
        }
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}
