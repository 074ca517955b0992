//! Compiled functions on disk, shared by every tenant's snapshot module.
//!
//! Each tenant has a snapshot module of its own (its own str hash secret), but the modules
//! differ only in their data: their thousands of functions are the interpreter's, the same for
//! every tenant. wasmtime's incremental compilation asks this store for each function by a
//! hash of its body before compiling it, so a new tenant's snapshot reuses what the first one
//! compiled. The entries live on disk rather than in memory so that they cost no RSS: they
//! are read once per new snapshot, and the compiled module keeps its own copy of the code.
//!
//! About 5 % of the functions differ between two tenants' snapshots (570 of 11,030 measured);
//! those never hit again, so the store takes entries only until the process has compiled its
//! first snapshot ([`FunctionCache::seal_if_used`]): the disk holds the shared functions plus one
//! snapshot's own per process start, instead of growing by ~2 MB with every tenant.
//!
//! Each entry is `sha256(value) || value`, checked on read: a torn or damaged file is a miss
//! (Cranelift then compiles the function again), never wrong code. The directory is as
//! trusted as wasmtime's own cache of compiled modules beside it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

const CHECKSUM_LEN: usize = 32;

/// A [`wasmtime::CacheStore`] of compiled functions in a directory.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    /// Names temporary files apart: Cranelift compiles (and inserts) on several threads.
    writes: AtomicU64,
    /// Set once a snapshot has compiled: later entries would be one tenant's own.
    sealed: AtomicBool,
    /// Whether anything was looked up, i.e. compiled (a module from wasmtime's cache is not).
    looked_up: AtomicBool,
}

impl FunctionCache {
    /// A store in `dir`, created on first insert.
    pub fn new(dir: PathBuf) -> Self {
        FunctionCache {
            dir,
            writes: AtomicU64::new(0),
            sealed: AtomicBool::new(false),
            looked_up: AtomicBool::new(false),
        }
    }

    /// Takes no more entries once something was compiled: called after each snapshot module
    /// is ready, so that what the store holds is what every tenant's snapshot shares. (A
    /// snapshot loaded from wasmtime's cache compiled nothing and leaves the store open.)
    pub fn seal_if_used(&self) {
        if self.looked_up.load(Ordering::Relaxed) {
            self.sealed.store(true, Ordering::Relaxed);
        }
    }

    /// Two hex digits of fan-out keep directories small (CPython has ~10,000 functions).
    fn path(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(Sha256::digest(key));
        self.dir.join(&name[..2]).join(&name[2..])
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        self.looked_up.store(true, Ordering::Relaxed);
        let mut bytes = std::fs::read(self.path(key)).ok()?;
        if bytes.len() < CHECKSUM_LEN {
            return None;
        }
        let value = bytes.split_off(CHECKSUM_LEN);
        (Sha256::digest(&value)[..] == bytes[..]).then_some(Cow::Owned(value))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        if self.sealed.load(Ordering::Relaxed) {
            return false;
        }
        let path = self.path(key);
        let Some(dir) = path.parent() else {
            return false;
        };
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            self.writes.fetch_add(1, Ordering::Relaxed)
        ));
        let mut entry = Vec::with_capacity(CHECKSUM_LEN + value.len());
        entry.extend_from_slice(&Sha256::digest(&value));
        entry.extend_from_slice(&value);
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, &entry))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn entries_round_trip_and_damaged_ones_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::new(dir.path().join("functions"));
        // Nothing compiled yet: still open.
        cache.seal_if_used();
        assert!(cache.get(b"key").is_none());
        assert!(cache.insert(b"key", b"compiled".to_vec()));
        assert_eq!(cache.get(b"key").as_deref(), Some(&b"compiled"[..]));
        assert!(cache.get(b"other key").is_none());

        // A flipped byte, a truncated file: misses, not wrong code.
        let path = cache.path(b"key");
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.get(b"key").is_none());
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(cache.get(b"key").is_none());

        cache.seal_if_used();
        assert!(!cache.insert(b"late", b"compiled".to_vec()));
        assert!(cache.get(b"late").is_none());
    }
}
