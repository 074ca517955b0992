//! `pubfn run`: one handler, one request, on this machine — the development loop of
//! Peliqan's "Run" button.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::app::invoke::{guest_request, route_segments};
use crate::host::GuestRequest;
use crate::packages::{PackageManifest, install};
use crate::sandbox::{Call, Isolation, Limits, PackageSet, Sandbox, Script};

/// Arguments of `pubfn run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The handler script.
    pub script: PathBuf,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Query string, without `?`.
    #[arg(long, default_value = "")]
    pub query: String,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body, or `@FILE` to read it from a file.
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// The runtime directory (default: $PUBFN_RUNTIME, else the last one built).
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// A module to import into the snapshot before the script runs, as a tenant's preload
    /// list does; repeatable. `--preload pandas` runs the script in the runtime's pandas
    /// flavour (numpy and pandas compiled in).
    #[arg(long = "preload", value_name = "MODULE")]
    pub preload: Vec<String>,
    /// CPU time limit of the call, in milliseconds (default: an endpoint's default).
    #[arg(long)]
    pub cpu_ms: Option<u64>,
    /// Wall-clock limit of the call, in milliseconds (default: an endpoint's default).
    #[arg(long)]
    pub wall_ms: Option<u64>,
    /// Memory limit of the call, in MiB (default: an endpoint's default).
    #[arg(long)]
    pub memory_mb: Option<usize>,
}

/// Runs the command.
pub async fn run(args: RunArgs) -> ExitCode {
    match execute(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pubfn run: {message}");
            ExitCode::from(2)
        }
    }
}

async fn execute(args: RunArgs) -> Result<ExitCode, String> {
    let script = std::fs::read_to_string(&args.script)
        .map_err(|e| format!("cannot read {}: {e}", args.script.display()))?;
    let request = build_request(&args)?;
    let sandbox = super::open_sandbox(args.runtime.clone(), |_| {})?;
    let limits = limits(&args, sandbox.max_memory_bytes())?;
    let packages = preload_set(&sandbox, &args.preload).await?;
    let call = Call {
        tenant: "local".into(),
        packages,
        endpoint: args.script.display().to_string(),
        version: "draft".into(),
        script: Script::new(script),
        isolation: Isolation::Strict,
        limits,
        request: request.into(),
        capabilities: Default::default(),
        meter: Default::default(),
        seed: Default::default(),
    };
    match sandbox.handle(call).await {
        Ok(reply) => {
            eprint!("{}", reply.output);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "HTTP {}", reply.response.status);
            for (name, value) in &reply.response.headers {
                let _ = writeln!(out, "{name}: {value}");
            }
            let _ = writeln!(out);
            let _ = out.write_all(&reply.response.body);
            let _ = out.flush();
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprint!("{}", error.output);
            eprintln!("error: {}", error.kind);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A package set holding only `preload`, installed as the server installs one, with its
/// snapshot built (a preload that raises is reported here, with its traceback).
pub(super) async fn preload_set(
    sandbox: &Sandbox,
    preload: &[String],
) -> Result<Option<Arc<PackageSet>>, String> {
    if preload.is_empty() {
        return Ok(None);
    }
    let manifest = PackageManifest {
        preload: preload.to_vec(),
        ..Default::default()
    };
    manifest
        .check(sandbox.reserved_module_names(), u64::MAX)
        .map_err(|e| e.to_string())?;
    let hash = manifest.hash();
    let dir = install::install(&sandbox.packages_dir(), &hash, &manifest, &HashMap::new())
        .map_err(|e| format!("installing the preload list: {e}"))?;
    let set = Arc::new(PackageSet {
        hash,
        dir,
        preload_ms: Limits::default().cpu_ms,
        preload: manifest.preload,
    });
    sandbox
        .prepare_packages("local", set.clone())
        .await
        .map_err(|e| crate::app::describe(&e))?;
    Ok(Some(set))
}

/// An endpoint's default limits with the command line's overrides, checked as a deploy
/// checks them.
fn limits(args: &RunArgs, max_memory_bytes: usize) -> Result<Limits, String> {
    let mut limits = Limits::default();
    if let Some(cpu_ms) = args.cpu_ms {
        limits.cpu_ms = cpu_ms;
    }
    if let Some(wall_ms) = args.wall_ms {
        limits.wall_ms = wall_ms;
    }
    if let Some(mib) = args.memory_mb {
        limits.memory_bytes = mib.saturating_mul(1 << 20);
    }
    limits.validate(max_memory_bytes)?;
    Ok(limits)
}

fn build_request(args: &RunArgs) -> Result<GuestRequest, String> {
    let body = match args.data.as_deref() {
        None => Vec::new(),
        Some(file) if file.starts_with('@') => {
            std::fs::read(&file[1..]).map_err(|e| format!("cannot read {}: {e}", &file[1..]))?
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    let path = if args.path.starts_with('/') {
        args.path.clone()
    } else {
        format!("/{}", args.path)
    };
    let query = args.query.trim_start_matches('?');
    let uri = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let mut request = hyper::http::Request::builder()
        .method(args.method.to_ascii_uppercase().as_str())
        .uri(&uri)
        .header(hyper::header::HOST, "localhost");
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header {header:?} is not of the form 'Name: value'"))?;
        request = request.header(name.trim(), value.trim());
    }
    let (parts, body) = request
        .body(body)
        .map_err(|e| format!("the request is not valid HTTP: {e}"))?
        .into_parts();
    let route = route_segments(&path).map_err(|e| e.to_string())?;
    Ok(guest_request(&parts, body, &route, Default::default()))
}
