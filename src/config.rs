//! Process configuration: the only place that reads environment variables.

use std::path::PathBuf;

/// pubfn's cache directory: `$PUBFN_CACHE_DIR`, else `$XDG_CACHE_HOME/pubfn`, else
/// `~/.cache/pubfn` (the same rule as scripts/build-python-runtime).
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PUBFN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache")
        });
    base.join("pubfn")
}

/// The runtime named by `$PUBFN_RUNTIME`, else the last one scripts/build-python-runtime made.
pub fn default_runtime_dir() -> PathBuf {
    match std::env::var_os("PUBFN_RUNTIME") {
        Some(dir) => PathBuf::from(dir),
        None => default_cache_dir().join("runtime").join("current"),
    }
}

/// The operator's admin key, from `$PUBFN_ADMIN_KEY` (unset or empty: none).
pub fn admin_key() -> Option<String> {
    std::env::var("PUBFN_ADMIN_KEY")
        .ok()
        .filter(|key| !key.is_empty())
}

/// Whether guests' JIT code should be named for `perf` (`$PUBFN_GUEST_PERFMAP` set).
pub fn guest_perf_map() -> bool {
    std::env::var_os("PUBFN_GUEST_PERFMAP").is_some()
}

/// A new random secret: 32 bytes, hex.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}
