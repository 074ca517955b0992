//! A tenant's package set as the sandbox sees it: a directory on the host, unpacked once per
//! node (`packages::install`), preopened read-only for the guest at a fixed path, at snapshot
//! time and at run time alike.

use std::path::PathBuf;

/// Where the guest finds a package set: `site/` below it is on `sys.path` (after the stdlib
/// and the runtime's own packages), and `preload.json` names what the snapshot imports.
/// The driver knows this path too (guest-sdk/pq/_driver.py, `PACKAGES_DIR`).
pub const GUEST_PACKAGES_DIR: &str = "/usr/local/tenant";

/// A package set, installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSet {
    /// The set's hash: snapshots are kept per tenant and set.
    pub hash: String,
    /// Its directory on the host.
    pub dir: PathBuf,
    /// How long the snapshot build may spend importing its preload list, in milliseconds:
    /// the tenant's CPU limit (the build runs alone, so its wall time is its CPU time).
    pub preload_ms: u64,
    /// The modules its snapshot imports (`preload.json`): naming one of a runtime flavour's
    /// packages (`pandas`) builds the snapshot from that flavour's interpreter.
    pub preload: Vec<String>,
}
