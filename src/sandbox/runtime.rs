//! The Python runtime built by `scripts/build-python-runtime`: the reactor interpreter, its
//! read-only stdlib, and a manifest naming the ABI version they speak.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::SandboxError;
use crate::host::abi::ABI_VERSION;
use crate::packages::ReservedNames;

/// The stdlib's module names (`sys.stdlib_module_names` of the build's CPython), one per line,
/// written by scripts/build-python-runtime.
const STDLIB_NAMES_FILE: &str = "stdlib_module_names.txt";

/// Where the guest finds its stdlib. The host preopens the runtime's `lib/` here, at snapshot
/// time and at run time alike (see python-runtime/driver.c, `STDLIB_DIR`).
pub const GUEST_LIB_DIR: &str = "/usr/local/lib";

#[derive(Debug, Deserialize)]
struct Manifest {
    abi_version: i32,
    python: String,
    wasm: String,
    stdlib: String,
}

/// A runtime directory, checked and loaded.
#[derive(Debug, Clone)]
pub struct PythonRuntime {
    /// The directory itself.
    pub dir: PathBuf,
    /// The reactor interpreter (not yet pre-initialised).
    pub wasm: Vec<u8>,
    /// Host directory holding `python3.13/`, preopened read-only as [`GUEST_LIB_DIR`].
    pub lib_dir: PathBuf,
    /// CPython version, e.g. `3.13.5`.
    pub python_version: String,
    /// Hex SHA-256 of the interpreter and the manifest, whose `build_id` is the hash of every
    /// input of the build (stdlib and SDK included): names this runtime in caches.
    pub id: String,
    /// Top-level module names a tenant's packages may not take: the stdlib's, the SDK's and
    /// the bundled packages'.
    pub reserved_names: ReservedNames,
}

impl PythonRuntime {
    /// Loads the runtime in `dir`, refusing one whose ABI version this host does not speak.
    pub fn load(dir: &Path) -> Result<Self, SandboxError> {
        let missing = |what: &str, e: std::io::Error| {
            SandboxError::runtime(
                format!(
                    "{what} in {} (build it with scripts/build-python-runtime)",
                    dir.display()
                ),
                Some(Box::new(e)),
            )
        };
        let manifest_bytes =
            std::fs::read(dir.join("manifest.json")).map_err(|e| missing("manifest.json", e))?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| SandboxError::runtime("bad manifest.json", Some(Box::new(e))))?;
        if manifest.abi_version != ABI_VERSION {
            return Err(SandboxError::runtime(
                format!(
                    "runtime speaks ABI version {}, this host speaks {ABI_VERSION}; rebuild it \
                     with scripts/build-python-runtime",
                    manifest.abi_version
                ),
                None,
            ));
        }
        let wasm =
            std::fs::read(dir.join(&manifest.wasm)).map_err(|e| missing("interpreter", e))?;
        let lib_dir = dir.join(&manifest.stdlib);
        if !lib_dir.join("python3.13").is_dir() {
            return Err(SandboxError::runtime(
                format!("no stdlib in {}", lib_dir.display()),
                None,
            ));
        }
        let id = hex::encode(
            Sha256::new()
                .chain_update(&wasm)
                .chain_update(&manifest_bytes)
                .finalize(),
        );
        let reserved_names = reserved_names(dir, &lib_dir)?;
        Ok(PythonRuntime {
            reserved_names,
            dir: dir.to_path_buf(),
            wasm,
            lib_dir,
            python_version: manifest.python,
            id,
        })
    }
}

/// The names in [`STDLIB_NAMES_FILE`], and the top level of the runtime's `site-packages`
/// (`requests`, ...) with the SDK's `pq` and `_pq`.
fn reserved_names(dir: &Path, lib_dir: &Path) -> Result<ReservedNames, SandboxError> {
    let stdlib_file = dir.join(STDLIB_NAMES_FILE);
    let stdlib = std::fs::read_to_string(&stdlib_file).map_err(|e| {
        SandboxError::runtime(
            format!(
                "{} (rebuild it with scripts/build-python-runtime)",
                stdlib_file.display()
            ),
            Some(Box::new(e)),
        )
    })?;
    let mut bundled = vec!["pq".to_string(), "_pq".to_string()];
    let site = lib_dir.join("python3.13").join("site-packages");
    for entry in std::fs::read_dir(&site).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".dist-info") || name == "__pycache__" {
            continue;
        }
        bundled.push(name.strip_suffix(".py").unwrap_or(&name).to_string());
    }
    Ok(ReservedNames::new(
        stdlib
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from),
        bundled,
    ))
}
