//! The Python runtime built by `scripts/build-python-runtime`: the reactor interpreter, its
//! read-only stdlib, and a manifest naming the ABI version they speak.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Interpreters with extension modules compiled in, by name (`pandas`).
    #[serde(default)]
    flavours: std::collections::BTreeMap<String, FlavourManifest>,
}

#[derive(Debug, Deserialize)]
struct FlavourManifest {
    wasm: String,
    modules: Vec<String>,
}

/// A flavour of the runtime: the interpreter with some packages' C extension modules compiled
/// in (the `pandas` flavour: numpy and pandas), their Python files in the runtime's
/// `lib/python3.13/site-packages-<name>/`, which only this interpreter searches. A tenant
/// gets it by naming one of `modules` in its preload list; the others keep the smaller base
/// interpreter, its snapshots and its memory.
#[derive(Debug, Clone)]
pub struct Flavour {
    /// Its name, e.g. `pandas`.
    pub name: String,
    /// Its reactor interpreter (not yet pre-initialised).
    pub wasm: Arc<Vec<u8>>,
    /// The top-level packages it adds (`numpy`, `pandas`).
    pub modules: Vec<String>,
}

/// A runtime directory, checked and loaded.
#[derive(Debug, Clone)]
pub struct PythonRuntime {
    /// The directory itself.
    pub dir: PathBuf,
    /// The reactor interpreter (not yet pre-initialised).
    pub wasm: Vec<u8>,
    /// The flavours beside it (see [`Flavour`]).
    pub flavours: Vec<Flavour>,
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
        let mut hasher = Sha256::new().chain_update(&wasm);
        let mut flavours = Vec::new();
        for (name, flavour) in &manifest.flavours {
            let bytes = std::fs::read(dir.join(&flavour.wasm))
                .map_err(|e| missing(&format!("the {name} flavour's interpreter"), e))?;
            hasher.update(&bytes);
            flavours.push(Flavour {
                name: name.clone(),
                wasm: Arc::new(bytes),
                modules: flavour.modules.clone(),
            });
        }
        let id = hex::encode(hasher.chain_update(&manifest_bytes).finalize());
        let flavour_modules = flavours.iter().flat_map(|f| f.modules.iter().cloned());
        let reserved_names = reserved_names(dir, &lib_dir, flavour_modules)?;
        Ok(PythonRuntime {
            reserved_names,
            dir: dir.to_path_buf(),
            wasm,
            flavours,
            lib_dir,
            python_version: manifest.python,
            id,
        })
    }
}

impl PythonRuntime {
    /// The flavour a snapshot importing `preload` is built from: the first whose packages one
    /// of the names (or its top level, `pandas.api.types` -> `pandas`) is; `None` for the base
    /// interpreter.
    pub fn flavour_for(&self, preload: &[String]) -> Option<&Flavour> {
        self.flavours.iter().find(|flavour| {
            preload.iter().any(|name| {
                let top = name.split('.').next().unwrap_or(name);
                flavour.modules.iter().any(|m| m == top)
            })
        })
    }
}

/// The names in [`STDLIB_NAMES_FILE`], and the top level of the runtime's `site-packages`
/// (`requests`, ...) with the SDK's `pq` and `_pq`, and the flavours' packages (`numpy`,
/// `pandas`: a tenant's own could never load its C half).
fn reserved_names(
    dir: &Path,
    lib_dir: &Path,
    flavour_modules: impl Iterator<Item = String>,
) -> Result<ReservedNames, SandboxError> {
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
    let mut bundled: Vec<String> = ["pq", "_pq"].into_iter().map(String::from).collect();
    bundled.extend(flavour_modules);
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
