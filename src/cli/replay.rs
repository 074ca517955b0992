//! `pubfn replay --tenant T REQUEST_ID [--script fixed.py]`: runs a failed call's handler again
//! on this machine, in the sandbox, with the request, randomness, clock and capability answers
//! the server recorded (app/replay). Nothing touches a database or the network; secrets come
//! from `--secret NAME=VALUE`, else from the server again (the tenant's own admins only).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::admin_client::{ServerArgs, call};
use crate::app::replay::playback::Playback;
use crate::app::replay::recording::{HostCall, RECORDING_VERSION, Recording, SecretOutcome};
use crate::http::respond::Problem;
use crate::sandbox::{Call, Isolation, Script};

mod packages;

/// Exit status when the replay asked for something the recording does not hold.
const DIVERGED: u8 = 3;

/// Arguments of `pubfn replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The failed request's id (its `X-Request-Id`; its log entry's `request_id`).
    pub request_id: String,
    /// Run this script instead of the recorded one (to try a fix on the same inputs).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// A secret's value, `NAME=VALUE`; repeatable. Secrets not given are asked of the server.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// Replay this saved recording (the JSON the admin API serves) instead of fetching it.
    #[arg(long)]
    pub recording: Option<PathBuf>,
    /// The runtime directory (default: $PUBFN_RUNTIME, else the last one built).
    #[arg(long)]
    pub runtime: Option<PathBuf>,
}

/// Runs the command: exit 0 if the handler answered below 500, 1 if it failed, 3 if it asked
/// for something the recording does not hold, 2 if the replay could not start.
pub async fn run(server: ServerArgs, args: ReplayArgs) -> ExitCode {
    match execute(&server, args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pubfn replay: {message}");
            ExitCode::from(2)
        }
    }
}

async fn fetch(server: &ServerArgs, args: &ReplayArgs) -> Result<Recording, String> {
    let value = match &args.recording {
        Some(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_slice(&text)
                .map_err(|e| format!("{} is not JSON: {e}", path.display()))?
        }
        None => {
            let path = format!("/tenants/{}/replays/{}", args.tenant, args.request_id);
            call(server, "GET", &path, None).await?
        }
    };
    if value["version"].as_u64() != Some(u64::from(RECORDING_VERSION)) {
        return Err(format!(
            "a recording of format {} (this pubfn reads {RECORDING_VERSION})",
            value["version"]
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("a malformed recording: {e}"))
}

/// `--secret` values, then the server's for the secrets the recorded call read that are not
/// given.
async fn secrets(
    server: &ServerArgs,
    args: &ReplayArgs,
    recording: &Recording,
) -> Result<HashMap<String, String>, String> {
    let mut values = HashMap::new();
    for pair in &args.secrets {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--secret {pair:?}: not of the form NAME=VALUE"))?;
        values.insert(name.to_string(), value.to_string());
    }
    let missing: Vec<&str> = recording
        .calls
        .iter()
        .filter_map(|c| match c {
            HostCall::Secret {
                name,
                outcome: SecretOutcome::Found,
            } if !values.contains_key(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if missing.is_empty() || args.recording.is_some() {
        return Ok(values);
    }
    let path = format!(
        "/tenants/{}/replays/{}/secrets",
        args.tenant, args.request_id
    );
    let answer = call(server, "GET", &path, None).await.map_err(|e| {
        format!(
            "the call read secrets {missing:?}; asking the server for them: {e} \
             (pass --secret NAME=VALUE)"
        )
    })?;
    if let Some(given) = answer["secrets"].as_object() {
        for (name, value) in given {
            if let Some(value) = value.as_str() {
                values.insert(name.clone(), value.to_string());
            }
        }
    }
    Ok(values)
}

async fn execute(server: &ServerArgs, args: ReplayArgs) -> Result<ExitCode, String> {
    let recording = fetch(server, &args).await?;
    let script = match &args.script {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => recording.script.clone(),
    };
    let secrets = secrets(server, &args, &recording).await?;
    let sandbox = super::open_sandbox(args.runtime.clone(), |_| {})?;
    let mut limits = recording.limits;
    limits.memory_bytes = limits.memory_bytes.min(sandbox.max_memory_bytes());
    limits
        .validate(sandbox.max_memory_bytes())
        .map_err(|e| format!("the recording's {e}"))?;
    let packages = match &recording.package_set {
        Some(hash) if args.recording.is_none() => {
            Some(packages::uploaded_set(server, &args, &sandbox, hash).await?)
        }
        _ => {
            if recording.uploaded_packages {
                eprintln!(
                    "pubfn replay: the endpoint's uploaded wheels and modules are fetched only \
                     when the recording is (by request id, without --recording); only its \
                     preload list {:?} is installed",
                    recording.preload
                );
            }
            super::run::preload_set(&sandbox, &recording.preload).await?
        }
    };
    let playback = Playback::new(&recording, secrets);
    let call = Call {
        // The tenant whose snapshot `preload_set` prepared, as under `pubfn run`.
        tenant: "local".into(),
        packages,
        endpoint: recording.endpoint.clone(),
        version: format!("replay-{}", recording.endpoint_version),
        script: Script::new(script),
        // A fresh instance, as a strict endpoint's call had: nothing left by earlier calls.
        isolation: Isolation::Strict,
        limits,
        request: Arc::new(recording.request.to_guest()),
        capabilities: playback.capabilities(),
        meter: Default::default(),
        seed: recording.seed,
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "replaying request {} of {}/{} (version {}), which answered HTTP {}",
        recording.request_id,
        recording.tenant,
        recording.endpoint,
        recording.endpoint_version,
        recording.status
    );
    let outcome = sandbox.handle(call).await;
    let failed = match &outcome {
        Ok(reply) => {
            eprint!("{}", reply.output);
            let _ = writeln!(out, "HTTP {}", reply.response.status);
            for (name, value) in &reply.response.headers {
                let _ = writeln!(out, "{name}: {value}");
            }
            let _ = writeln!(out);
            let _ = out.write_all(&reply.response.body);
            let _ = writeln!(out);
            reply.response.status >= 500
        }
        Err(error) => {
            eprint!("{}", error.output);
            let status = Problem::for_call(&error.kind).status();
            let _ = writeln!(out, "HTTP {}", status.as_u16());
            let _ = writeln!(out, "error: {}", error.kind);
            if let Some(traceback) = error.kind.traceback() {
                let _ = writeln!(out, "{}", traceback.trim_end());
            }
            true
        }
    };
    let _ = out.flush();
    for approximation in playback.approximations() {
        eprintln!("pubfn replay: approximated: {approximation}");
    }
    let divergences = playback.divergences();
    for divergence in &divergences {
        eprintln!("pubfn replay: diverged: {divergence}");
    }
    let unused = playback.unused();
    if unused > 0 {
        eprintln!("pubfn replay: {unused} recorded call(s) were not asked for");
    }
    Ok(if !divergences.is_empty() {
        ExitCode::from(DIVERGED)
    } else if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
