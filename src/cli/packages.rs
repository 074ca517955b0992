//! `pubfn packages ...` and `pubfn module ...`: a tenant's pure-Python wheels (resolved with pip
//! on the operator's machine, uploaded one by one), its preload list, and its own modules.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::Subcommand;
use http_body_util::Full;
use serde_json::{Value, json};

use super::admin_client::{ServerArgs, call, send};
use super::manage::finish;

/// `pubfn packages ...`
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// Install pure-Python wheels: `.whl` files as they are, requirements (`tabulate==0.9`, or
    /// `-r requirements.txt`) resolved and downloaded with pip here (`--only-binary=:all:
    /// --platform any`), then uploaded. Wheels bundled with the runtime (requests and its
    /// dependencies) are skipped; a new version of an installed project replaces it.
    Add {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A requirements file for pip.
        #[arg(short = 'r', long = "requirement")]
        requirements: Vec<PathBuf>,
        /// `.whl` files, or requirement specifiers.
        packages: Vec<String>,
        /// The Python pip runs as (it only downloads; the sandbox's CPython is 3.13).
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Show a tenant's wheels, modules, preload list and package set.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Remove wheels, by project name (`python-dateutil`) or file name.
    Remove {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Projects or wheel file names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Replace the modules imported into the tenant's snapshot (none: clear the list).
    Preload {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Modules, e.g. `pydantic dateutil.parser`.
        modules: Vec<String>,
    },
}

/// `pubfn module ...`
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Add or replace one of the tenant's own modules from a `.py` file (dotted names make
    /// packages: `helpers.text`).
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The module's dotted name.
        name: String,
        /// Its source file.
        file: PathBuf,
    },
    /// List the tenant's modules.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Print a module's source.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The module.
        name: String,
    },
    /// Remove a module.
    Remove {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The module.
        name: String,
    },
}

/// Runs a packages verb.
pub async fn packages(server: ServerArgs, command: PackagesCommand) -> ExitCode {
    match command {
        PackagesCommand::Add {
            tenant,
            requirements,
            packages,
            python,
        } => finish(add(&server, &tenant, &requirements, &packages, &python).await),
        PackagesCommand::List { tenant } => {
            match call(&server, "GET", &format!("/tenants/{tenant}/packages"), None).await {
                Ok(summary) => {
                    print_summary(&summary);
                    ExitCode::SUCCESS
                }
                Err(e) => finish(Err(e)),
            }
        }
        PackagesCommand::Remove { tenant, names } => finish(remove(&server, &tenant, &names).await),
        PackagesCommand::Preload { tenant, modules } => {
            let path = format!("/tenants/{tenant}/preload");
            finish(call(&server, "PUT", &path, Some(json!({"modules": modules}))).await)
        }
    }
}

/// Runs a module verb.
pub async fn module(server: ServerArgs, command: ModuleCommand) -> ExitCode {
    match command {
        ModuleCommand::Set { tenant, name, file } => {
            let result = match std::fs::read_to_string(&file) {
                Ok(source) => {
                    let path = format!("/tenants/{tenant}/modules/{name}");
                    call(&server, "PUT", &path, Some(json!({"source": source}))).await
                }
                Err(e) => Err(format!("cannot read {}: {e}", file.display())),
            };
            finish(result)
        }
        ModuleCommand::List { tenant } => {
            finish(call(&server, "GET", &format!("/tenants/{tenant}/modules"), None).await)
        }
        ModuleCommand::Show { tenant, name } => {
            let path = format!("/tenants/{tenant}/modules/{name}");
            match call(&server, "GET", &path, None).await {
                Ok(module) => {
                    print!("{}", module["source"].as_str().unwrap_or(""));
                    ExitCode::SUCCESS
                }
                Err(e) => finish(Err(e)),
            }
        }
        ModuleCommand::Remove { tenant, name } => {
            let path = format!("/tenants/{tenant}/modules/{name}");
            finish(call(&server, "DELETE", &path, None).await)
        }
    }
}

async fn add(
    server: &ServerArgs,
    tenant: &str,
    requirement_files: &[PathBuf],
    packages: &[String],
    python: &str,
) -> Result<Value, String> {
    let (files, specifiers): (Vec<&String>, Vec<&String>) =
        packages.iter().partition(|p| p.ends_with(".whl"));
    let mut wheels: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let download = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    if !specifiers.is_empty() || !requirement_files.is_empty() {
        wheels.extend(resolve(
            python,
            requirement_files,
            &specifiers,
            download.path(),
        )?);
    }
    if wheels.is_empty() {
        return Err("nothing to add: name .whl files, requirements or -r FILE".into());
    }
    let total = wheels.len();
    let (mut installed, mut skipped) = (Vec::new(), Vec::new());
    for (i, wheel) in wheels.iter().enumerate() {
        let filename = wheel
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a wheel file name", wheel.display()))?;
        let bytes =
            std::fs::read(wheel).map_err(|e| format!("cannot read {}: {e}", wheel.display()))?;
        progress(&format!(
            "[{}/{total}] {filename} ({} KiB)",
            i + 1,
            bytes.len() / 1024
        ));
        let path = format!("/tenants/{tenant}/wheels/{filename}");
        let body = Full::new(Bytes::from(bytes));
        match send(server, "PUT", &path, "application/octet-stream", body).await {
            Ok(wheel) => installed.push(wheel),
            // requests and its dependencies come with the runtime, patched for the sandbox.
            Err(e) if e.contains("part of the runtime already") => {
                progress(&format!("  skipped: bundled with the runtime ({e})"));
                skipped.push(json!(filename));
            }
            Err(e) => {
                return Err(format!(
                    "{filename}: {e} (the wheels before it were installed)"
                ));
            }
        }
    }
    Ok(json!({"installed": installed, "skipped_bundled": skipped}))
}

/// Downloads the wheels that satisfy the requirements with pip: pure-Python ones only, for
/// the sandbox's CPython 3.13 whatever Python runs pip here.
fn resolve(
    python: &str,
    requirement_files: &[PathBuf],
    specifiers: &[&String],
    into: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut command = std::process::Command::new(python);
    command.args([
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--platform",
        "any",
    ]);
    command.args([
        "--python-version",
        "3.13",
        "--implementation",
        "py",
        "--abi",
        "none",
    ]);
    command.arg("--dest").arg(into);
    if !std::io::stderr().is_terminal() {
        command.arg("--quiet");
    }
    for file in requirement_files {
        command.arg("-r").arg(file);
    }
    command.args(specifiers.iter().map(|s| s.as_str()));
    progress("resolving with pip (pure-Python wheels only) ...");
    // pip's own progress goes to the terminal; its refusal (no pure wheel) says which project.
    let status = command
        .stdout(std::process::Stdio::inherit())
        .status()
        .map_err(|e| format!("running {python} -m pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "pip could not resolve the requirements to pure-Python wheels ({status}); a package \
             with native code cannot be installed in the sandbox"
        ));
    }
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(into)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "whl"))
        .collect();
    wheels.sort();
    Ok(wheels)
}

async fn remove(server: &ServerArgs, tenant: &str, names: &[String]) -> Result<Value, String> {
    let wheels = call(server, "GET", &format!("/tenants/{tenant}/wheels"), None).await?;
    let normalise = |name: &str| name.to_ascii_lowercase().replace(['_', '.'], "-");
    let mut removed = Vec::new();
    for name in names {
        let filename = wheels
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["filename"] == name.as_str() || w["name"] == normalise(name).as_str())
            .and_then(|w| w["filename"].as_str())
            .ok_or_else(|| format!("tenant {tenant:?} has no wheel {name:?}"))?
            .to_string();
        call(
            server,
            "DELETE",
            &format!("/tenants/{tenant}/wheels/{filename}"),
            None,
        )
        .await?;
        removed.push(filename);
    }
    Ok(json!({"removed": removed}))
}

fn progress(line: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{line}");
    }
}

fn print_summary(summary: &Value) {
    let set = summary["package_set"].as_str().unwrap_or("(none)");
    println!(
        "package set {set}: {} of {} bytes unpacked",
        summary["unpacked_bytes"], summary["quota_bytes"]
    );
    for wheel in summary["wheels"].as_array().into_iter().flatten() {
        println!(
            "wheel   {:<28} {:<12} {:>9} B  sha256 {}",
            wheel["name"].as_str().unwrap_or(""),
            wheel["version"].as_str().unwrap_or(""),
            wheel["size"],
            wheel["sha256"].as_str().unwrap_or("")
        );
    }
    for module in summary["modules"].as_array().into_iter().flatten() {
        println!(
            "module  {:<28} {:>22} B  sha256 {}",
            module["name"].as_str().unwrap_or(""),
            module["size"],
            module["sha256"].as_str().unwrap_or("")
        );
    }
    let preload: Vec<&str> = summary["preload"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "preload {}",
        if preload.is_empty() {
            "(none)".into()
        } else {
            preload.join(", ")
        }
    );
}
