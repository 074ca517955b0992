//! Removing what earlier runtimes left in the snapshot cache.
//!
//! Snapshots live under `snapshots/<runtime id>/`, and a new runtime (every rebuild of
//! python-runtime/ or guest-sdk/) starts a new directory: without pruning, each upgrade would
//! leave a snapshot per tenant on disk for good. Another process may still be using another
//! runtime's directory (a server being replaced on the same host), so only directories left
//! untouched for [`STALE_AFTER`] go; a process that finds its snapshot gone builds it again.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long another runtime's snapshots, or a half-written one, must have been left alone
/// before they are removed.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Removes, under `snapshots_dir`, the directories of runtimes other than `current` and the
/// unfinished writes in `current`, where not modified for `stale_after`. Returns how many
/// entries it removed; what it cannot read or remove is left and logged.
pub fn prune_stale(snapshots_dir: &Path, current: &str, stale_after: Duration) -> usize {
    let now = SystemTime::now();
    let stale = |path: &Path| {
        std::fs::symlink_metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= stale_after)
    };
    let mut removed = 0;
    for entry in read_dir(snapshots_dir) {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if entry.file_name() == current {
            // A write interrupted by a crash leaves `.<pid>.tmp` behind.
            for inner in read_dir(&path) {
                let name = inner.file_name();
                let unfinished = name.to_string_lossy().starts_with('.')
                    && name.to_string_lossy().ends_with(".tmp");
                if unfinished && stale(&inner.path()) && remove(&inner.path(), false) {
                    removed += 1;
                }
            }
        } else if is_dir && stale(&path) && remove(&path, true) {
            removed += 1;
        }
    }
    removed
}

fn read_dir(dir: &Path) -> Vec<std::fs::DirEntry> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!("cannot read {} to prune old snapshots: {e}", dir.display());
            Vec::new()
        }
    }
}

fn remove(path: &Path, dir: bool) -> bool {
    let result = if dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => {
            tracing::info!("removed stale snapshots at {}", path.display());
            true
        }
        Err(e) => {
            tracing::warn!("cannot remove stale snapshots at {}: {e}", path.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, by: Duration) {
        let file = std::fs::File::open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn only_other_runtimes_and_unfinished_writes_left_alone_long_enough_go() {
        let root = tempfile::tempdir().unwrap();
        let snapshots = root.path();
        let hour = Duration::from_secs(3600);
        for dir in ["old-runtime", "recent-runtime", "current"] {
            std::fs::create_dir(snapshots.join(dir)).unwrap();
            std::fs::write(snapshots.join(dir).join("tenant.wasm"), b"\0asm").unwrap();
        }
        std::fs::write(snapshots.join("current/.123.tmp"), b"half").unwrap();
        std::fs::write(snapshots.join("current/.456.tmp"), b"being written").unwrap();
        std::fs::write(snapshots.join("stray-file"), b"x").unwrap();
        age(&snapshots.join("old-runtime"), 2 * hour);
        age(&snapshots.join("current"), 2 * hour);
        age(&snapshots.join("current/tenant.wasm"), 2 * hour);
        age(&snapshots.join("current/.123.tmp"), 2 * hour);
        age(&snapshots.join("stray-file"), 2 * hour);

        assert_eq!(prune_stale(snapshots, "current", hour), 2);
        assert!(!snapshots.join("old-runtime").exists());
        assert!(snapshots.join("recent-runtime/tenant.wasm").exists());
        assert!(snapshots.join("current/tenant.wasm").exists());
        assert!(!snapshots.join("current/.123.tmp").exists());
        assert!(snapshots.join("current/.456.tmp").exists());
        assert!(snapshots.join("stray-file").exists());
        // Nothing to do the second time, and no cache at all is no error.
        assert_eq!(prune_stale(snapshots, "current", hour), 0);
        assert_eq!(prune_stale(&snapshots.join("missing"), "current", hour), 0);
    }
}
