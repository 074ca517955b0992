//! `pubfn run`: one handler, one request, on this machine — the development loop of
//! Peliqan's "Run" button.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::invoke::{guest_request, route_segments};
use crate::host::GuestRequest;
use crate::sandbox::{Call, Isolation, Limits, Script};

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
    let call = Call {
        tenant: "local".into(),
        packages: None,
        endpoint: args.script.display().to_string(),
        version: "draft".into(),
        script: Script::new(script),
        isolation: Isolation::Strict,
        limits: Limits::default(),
        request,
        capabilities: Default::default(),
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
