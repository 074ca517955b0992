//! Shared set-up for tests that run the real interpreter in the real engine.
//!
//! The runtime is built (or found in its cache) by the same script users run; a test never
//! skips because it is missing.

#![allow(dead_code)]

#[path = "runtime.rs"]
mod runtime;
pub use runtime::runtime_dir;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pubfn::host::GuestRequest;
use pubfn::sandbox::{
    Call, CallError, CallErrorKind, Isolation, Limits, PythonRuntime, Reply, Sandbox,
    SandboxConfig, Script,
};

/// A cache directory private to this test build (snapshots and compiled code).
pub fn test_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("pubfn-cache")
}

/// A sandbox over the test runtime with its own cache directory.
pub fn new_sandbox(cache_dir: PathBuf) -> Sandbox {
    new_sandbox_configured(cache_dir, |_| {})
}

/// A sandbox like [`new_sandbox`]'s, with its settings changed by `configure`.
pub fn new_sandbox_configured(
    cache_dir: PathBuf,
    configure: impl FnOnce(&mut SandboxConfig),
) -> Sandbox {
    let runtime = PythonRuntime::load(runtime_dir()).expect("loading the runtime");
    let mut config = SandboxConfig::new(cache_dir);
    config.max_instances = 32;
    configure(&mut config);
    Sandbox::new(runtime, config).expect("building the sandbox")
}

/// One sandbox shared by the tests of a binary (engines are process-wide in production too).
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| new_sandbox(test_cache_dir()))
}

/// A GET request for `path?query`.
pub fn get(path: &str, query: &str) -> GuestRequest {
    GuestRequest {
        method: "GET".into(),
        url: format!(
            "http://localhost{path}{}{query}",
            if query.is_empty() { "" } else { "?" }
        ),
        path: path.into(),
        query_string: query.into(),
        ..Default::default()
    }
}

/// A call of `script` for `tenant` under the default limits.
pub fn call(tenant: &str, endpoint: &str, script: &str, request: GuestRequest) -> Call {
    Call {
        tenant: tenant.into(),
        packages: None,
        endpoint: endpoint.into(),
        version: format!("{:x}", md5ish(script)),
        script: Script::new(script),
        isolation: Isolation::Strict,
        limits: Limits::default(),
        request: request.into(),
        capabilities: Default::default(),
        meter: Default::default(),
        seed: Default::default(),
    }
}

fn md5ish(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Runs `script` on a plain GET for tenant `alpha`.
pub async fn run(script: &str) -> Result<Reply, CallError> {
    sandbox()
        .handle(call("alpha", "test", script, get("/t", "")))
        .await
}

/// Runs `script` and returns its JSON body, failing the test on any error.
pub async fn run_json(script: &str) -> serde_json::Value {
    let reply = run(script)
        .await
        .unwrap_or_else(|e| panic!("call failed: {} ({:?})", e.kind, e.output));
    serde_json::from_slice(&reply.response.body).expect("a JSON body")
}

/// Runs `script` and returns why it failed, failing the test if it succeeded.
pub async fn run_err(script: &str) -> CallErrorKind {
    match run(script).await {
        Ok(reply) => panic!(
            "expected a failure, got {} {:?}",
            reply.response.status, reply.response.body
        ),
        Err(error) => error.kind,
    }
}
