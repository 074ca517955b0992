//! `pubfn logs --tenant T NAME [--follow]`: an endpoint's handler logs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::admin_client::{ServerArgs, call};

/// Arguments of `pubfn logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The endpoint.
    pub name: String,
    /// Entries to show at first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Keep printing new entries as they arrive.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// Prints the newest entries, oldest first, then (with --follow) polls for more.
pub async fn run(server: ServerArgs, args: LogsArgs) -> ExitCode {
    let path = format!("/tenants/{}/endpoints/{}/logs", args.tenant, args.name);
    let mut since: Option<i64> = None;
    let mut limit = args.limit;
    loop {
        let query = match since {
            Some(id) => format!("?limit={limit}&since={id}"),
            None => format!("?limit={limit}"),
        };
        let entries = match call(&server, "GET", &format!("{path}{query}"), None).await {
            Ok(Value::Array(entries)) => entries,
            Ok(other) => {
                eprintln!("pubfn logs: unexpected answer {other}");
                return ExitCode::FAILURE;
            }
            Err(message) => {
                eprintln!("pubfn logs: {message}");
                return ExitCode::FAILURE;
            }
        };
        for entry in entries.iter().rev() {
            print_entry(entry);
            since = entry["id"].as_i64().max(since);
        }
        if !args.follow {
            return ExitCode::SUCCESS;
        }
        limit = 1_000;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_entry(entry: &Value) {
    let text = |key: &str| entry[key].as_str().unwrap_or("").to_string();
    println!(
        "{} {} {} {} -> {} ({:.1} ms) request {}",
        text("created_at"),
        text("method"),
        text("path"),
        format_args!("v{}", entry["version"]),
        entry["status"],
        entry["duration_ms"].as_f64().unwrap_or(0.0),
        text("request_id"),
    );
    for key in ["output", "error", "traceback"] {
        let value = text(key);
        if !value.is_empty() {
            for line in value.trim_end().lines() {
                println!("    {line}");
            }
        }
    }
}
