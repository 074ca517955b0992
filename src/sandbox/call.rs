//! What the sandbox is asked to run, and what it answers: a [`Call`] (a handler's script, its
//! request, limits and capabilities) and its [`Reply`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CallMeter, CallSeed, Capabilities, Limits, PackageSet, SnapshotSource};
use crate::host::{GuestRequest, GuestResponse};

/// How instances are shared between the requests of one endpoint version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A fresh instance from the snapshot for every request, dropped afterwards.
    #[default]
    Strict,
    /// Instances are reused by later requests of the same endpoint version.
    Warm,
}

/// A handler's source with its SHA-256, computed once: compiled code objects are kept under
/// the digest of the source they came from, so no caller can be served another script's code
/// by naming its version the same (as every draft run once was).
#[derive(Clone, Debug)]
pub struct Script {
    source: Arc<str>,
    sha256: [u8; 32],
}

impl Script {
    /// The script `source`, hashed.
    pub fn new(source: impl Into<Arc<str>>) -> Self {
        use sha2::{Digest, Sha256};
        let source = source.into();
        let sha256 = Sha256::digest(source.as_bytes()).into();
        Script { source, sha256 }
    }

    /// The source.
    pub fn source(&self) -> &Arc<str> {
        &self.source
    }

    /// The source's SHA-256.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The source's SHA-256, hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl From<&str> for Script {
    fn from(source: &str) -> Self {
        Script::new(source)
    }
}

/// One request for a handler.
#[derive(Clone)]
pub struct Call {
    /// Whose snapshot to run in.
    pub tenant: String,
    /// The package set of the endpoint version (its snapshot imported the set's preload).
    pub packages: Option<Arc<PackageSet>>,
    /// The endpoint's name.
    pub endpoint: String,
    /// The endpoint's version: warm instances serve only calls of the same version.
    pub version: String,
    /// The handler.
    pub script: Script,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Limits for this call.
    pub limits: Limits,
    /// The request (shared: a replay recording keeps it too).
    pub request: Arc<GuestRequest>,
    /// The tenant's databases, secrets and the endpoint's state, as far as it may use them.
    pub capabilities: Capabilities,
    /// Where the sandbox writes what the call used (CPU, memory), whatever its outcome.
    pub meter: Arc<CallMeter>,
    /// The call's randomness and start time (a replay passes the recorded call's).
    pub seed: CallSeed,
}

/// A handler's successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status, headers and body.
    pub response: GuestResponse,
    /// Captured stdout and stderr.
    pub output: String,
    /// Whether a warm instance was reused.
    pub reused_instance: bool,
    /// Where the tenant's snapshot came from, and how long it took, if this call had to load
    /// it (a new tenant, a restart, or after an eviction under the memory budget).
    pub snapshot_load: Option<(SnapshotSource, std::time::Duration)>,
}
