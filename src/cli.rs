//! The command line: one file per verb group.

mod admin_client;
pub mod egress;
pub mod logs;
pub mod manage;
pub mod packages;
pub mod replay;
pub mod resources;
pub mod run;
pub mod serve;
mod upload;

use clap::{Parser, Subcommand};

/// pubfn: publish Python handlers as HTTP endpoints, each run in a wasmtime sandbox.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    server: admin_client::ServerArgs,
    /// Log lines on stderr: `json` (one object per line, with the request id), `text`, or
    /// `auto` (text on a terminal, else json).
    #[arg(long, global = true, env = "PUBFN_LOG_FORMAT", default_value = "auto")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one handler script on one request, here, and print its response.
    Run(run::RunArgs),
    /// Serve published endpoints and the admin API.
    Serve(Box<serve::ServeArgs>),
    /// Manage tenants through the admin API (PUBFN_ADMIN_KEY, --server).
    #[command(subcommand)]
    Tenant(manage::TenantCommand),
    /// Manage endpoints through the admin API.
    #[command(subcommand)]
    Endpoint(manage::EndpointCommand),
    /// Manage tokens through the admin API.
    #[command(subcommand)]
    Token(manage::TokenCommand),
    /// Show an endpoint's handler logs (output, errors, tracebacks).
    Logs(logs::LogsArgs),
    /// Manage tenants' databases through the admin API.
    #[command(subcommand)]
    Db(resources::DbCommand),
    /// Manage tenants' secrets through the admin API.
    #[command(subcommand)]
    Secret(resources::SecretCommand),
    /// Manage where tenants' handlers may send HTTP (operator sets, tenant admins read).
    #[command(subcommand)]
    Egress(egress::EgressCommand),
    /// Manage tenants' stored connections for pq.connect (credentials sealed).
    #[command(subcommand)]
    Connection(egress::ConnectionCommand),
    /// Manage tenants' pure-Python wheels and the modules preloaded into their snapshots.
    #[command(subcommand)]
    Packages(packages::PackagesCommand),
    /// Manage tenants' own Python modules, importable by all their endpoints.
    #[command(subcommand)]
    Module(packages::ModuleCommand),
    /// Run a failed call's handler again on this machine, with what it received.
    Replay(replay::ReplayArgs),
}

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUBFN_LOG")
        .unwrap_or_else(|_| "warn,pubfn=info".into());
    let json = match cli.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        // The request's span (its id) goes on every line logged while serving it.
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pubfn: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Serve(args) => serve::run(*args).await,
            Command::Tenant(command) => manage::tenant(cli.server, command).await,
            Command::Endpoint(command) => manage::endpoint(cli.server, command).await,
            Command::Token(command) => manage::token(cli.server, command).await,
            Command::Logs(args) => logs::run(cli.server, args).await,
            Command::Db(command) => resources::db(cli.server, command).await,
            Command::Secret(command) => resources::secret(cli.server, command).await,
            Command::Egress(command) => egress::egress(cli.server, command).await,
            Command::Connection(command) => egress::connection(cli.server, command).await,
            Command::Packages(command) => packages::packages(cli.server, command).await,
            Command::Module(command) => packages::module(cli.server, command).await,
            Command::Replay(args) => replay::run(cli.server, args).await,
        }
    })
}

/// The sandbox over the runtime in `runtime` (default: `$PUBFN_RUNTIME`, else the last one
/// built), caching under pubfn's cache directory, with the defaults changed by `configure`.
fn open_sandbox(
    runtime: Option<std::path::PathBuf>,
    configure: impl FnOnce(&mut crate::sandbox::SandboxConfig),
) -> Result<crate::sandbox::Sandbox, String> {
    use crate::sandbox::{PythonRuntime, Sandbox, SandboxConfig};
    let dir = runtime.unwrap_or_else(crate::config::default_runtime_dir);
    let runtime = PythonRuntime::load(&dir).map_err(|e| crate::app::describe(&e))?;
    let mut config = SandboxConfig::new(crate::config::default_cache_dir());
    config.perf_map = crate::config::guest_perf_map();
    configure(&mut config);
    Sandbox::new(runtime, config).map_err(|e| crate::app::describe(&e))
}
