//! The package set a recorded call ran with, on this machine: its uploaded wheels and modules
//! come from the server (`GET .../replays/{id}/packages`), are checked to be exactly the
//! recorded set, and are installed and snapshotted as a node would.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::super::admin_client::{ServerArgs, call};
use super::ReplayArgs;
use crate::app::replay::RecordedPackages;
use crate::packages::install;
use crate::sandbox::{Limits, PackageSet, Sandbox};

/// Fetches package set `hash`, checks it (the manifest's hash is `hash`, every blob's SHA-256
/// is its name: the server's answer is taken on trust no more than a tenant's upload is),
/// installs it under the sandbox's package directory and builds its snapshot.
pub(super) async fn uploaded_set(
    server: &ServerArgs,
    args: &ReplayArgs,
    sandbox: &Sandbox,
    hash: &str,
) -> Result<Arc<PackageSet>, String> {
    let path = format!(
        "/tenants/{}/replays/{}/packages",
        args.tenant, args.request_id
    );
    let fetching = |e: String| format!("the call ran with uploaded packages; fetching them: {e}");
    let answer = call(server, "GET", &path, None).await.map_err(fetching)?;
    let set: RecordedPackages =
        serde_json::from_value(answer).map_err(|e| fetching(format!("a malformed answer: {e}")))?;
    let sent = set.manifest.hash();
    if set.hash != hash || sent != hash {
        return Err(fetching(format!(
            "the server sent package set {sent}, not the recorded {hash}"
        )));
    }
    let mut blobs = HashMap::new();
    for (sha, bytes) in set.blobs {
        if hex::encode(Sha256::digest(&bytes.0)) != sha {
            return Err(fetching(format!("blob {sha} does not match its SHA-256")));
        }
        blobs.insert(sha, bytes.0);
    }
    if let Some(missing) = set
        .manifest
        .blobs()
        .iter()
        .find(|sha| !blobs.contains_key(*sha))
    {
        return Err(fetching(format!("blob {missing} is missing")));
    }
    set.manifest
        .check(sandbox.reserved_module_names(), u64::MAX)
        .map_err(|e| e.to_string())?;
    let dir = install::install(&sandbox.packages_dir(), hash, &set.manifest, &blobs)
        .map_err(|e| format!("installing the recorded package set: {e}"))?;
    let set = Arc::new(PackageSet {
        hash: hash.to_string(),
        dir,
        preload_ms: Limits::default().cpu_ms,
        preload: set.manifest.preload,
    });
    // The tenant whose snapshot the call will use, as for a preload list alone.
    sandbox
        .prepare_packages("local", set.clone())
        .await
        .map_err(|e| crate::app::describe(&e))?;
    Ok(set)
}
