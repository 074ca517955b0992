//! Compiled snapshot modules on disk, loaded by mapping the file: how a tenant released under
//! the memory budget comes back.
//!
//! `Module::new` finds a snapshot's compiled code in wasmtime's cache, but it hashes the 15 MB
//! wasm, decompresses ~28 MB and copies the code and memory image into fresh memory: 58 ms per
//! reload on an idle core (`cargo bench --bench sandbox -- snapshot_reload`), 417 ms p50 under
//! `scripts/bench` h's load. `Module::deserialize_file` maps the serialized module instead
//! (0.5 ms): code and memory image are pages of the file, shared with the page cache and
//! reclaimable by the kernel, so a loaded snapshot also costs less anonymous memory.
//!
//! The file is trusted as wasmtime trusts its own cache: it lives in the private cache
//! directory, is written only by this process under a temporary name and renamed into place,
//! and is never modified once there (a file replaced or unlinked under a mapping leaves the
//! mapping as it was). Damage is caught before wasmtime sees the file: beside each
//! `<name>.cwasm` a `<name>.cwasm.sum` holds its length and XXH3-128, checked over the whole
//! file (~5 ms for 23 MB) the first time this process loads it. A missing, torn or damaged
//! file, or one another build of wasmtime wrote, is a miss: the caller builds the snapshot
//! again and writes a new one.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use wasmtime::{Engine, Module};
use xxhash_rust::xxh3::Xxh3;

/// Names temporary files apart: several snapshots may be written at once.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// The compiled form of the snapshot at `wasm_path` (`x.wasm` → `x.cwasm`).
pub fn path_for(wasm_path: &Path) -> PathBuf {
    wasm_path.with_extension("cwasm")
}

fn sum_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sum");
    PathBuf::from(name)
}

/// `len:<bytes> xxh3:<32 hex digits>` of what `reader` yields.
fn checksum(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Xxh3::new();
    // Streamed: reading the whole file into one buffer would fault in 28 MB of fresh memory.
    let mut buffer = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        len += n as u64;
    }
    Ok(format!("len:{len} xxh3:{:032x}", hasher.digest128()))
}

/// Writes `module` as `path` with its checksum beside it. A failure leaves no file under
/// either final name that a later load would accept.
pub fn save(path: &Path, module: &Module) -> Result<(), wasmtime::Error> {
    let bytes = module.serialize()?;
    let dir = path
        .parent()
        .expect("compiled snapshot paths have a parent");
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.cwasm.tmp", std::process::id()));
    let tmp_sum = dir.join(format!(".{}.{n}.sum.tmp", std::process::id()));
    let written = (|| {
        write_private(&tmp, &bytes)?;
        write_private(&tmp_sum, checksum(&bytes[..])?.as_bytes())?;
        // The module first: a reader that meets the new module with the old sum (or none)
        // sees a mismatch and compiles, never a module it did not check.
        std::fs::rename(&tmp, path)?;
        std::fs::rename(&tmp_sum, sum_path(path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_sum);
    }
    Ok(written?)
}

/// Writes a new file only this user may read: it holds a tenant's memory image (its hash
/// secret among it), whatever the umask.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// A file as the kernel names it: device, inode, size and modification time. A file
/// replaced (renamed over) or rewritten gets another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileId(u64, u64, u64, i64, i64);

fn file_id(file: &std::fs::File) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    Some(FileId(
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
    ))
}

/// Files whose checksum matched since this process started. A tenant released and reloaded
/// many times reads its 23 MB once, not at every reload (the sum took ~5 of a reload's
/// ~9 ms under bench h's load); damage is what a file suffers on disk, between processes.
static VERIFIED: LazyLock<Mutex<HashSet<FileId>>> = LazyLock::new(Mutex::default);

fn verified() -> MutexGuard<'static, HashSet<FileId>> {
    VERIFIED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The module at `path` if it is there, whole, and was compiled by an engine like `engine`.
pub fn load(engine: &Engine, path: &Path) -> Option<Module> {
    let file = std::fs::File::open(path).ok()?;
    let id = file_id(&file)?;
    if !verified().contains(&id) {
        let expected = std::fs::read_to_string(sum_path(path)).ok()?;
        let actual = checksum(&file).ok()?;
        if expected != actual {
            tracing::warn!(
                path = %path.display(),
                "a compiled snapshot failed its checksum; building it again"
            );
            return None;
        }
        verified().insert(id);
    }
    // SAFETY: `deserialize_open_file` runs what the file holds as code. The file was written
    // by `save` from `Module::serialize` into the process's private cache directory, renamed
    // into place and never written again, and this very file (the handle checked, not the
    // path again) matched the checksum `save` wrote beside it: it is what this process
    // serialized. wasmtime itself refuses (with an error, not UB) a file from another
    // wasmtime version or an engine configured differently.
    match unsafe { Module::deserialize_open_file(engine, file) } {
        Ok(module) => Some(module),
        Err(e) => {
            tracing::info!(path = %path.display(), "not using a compiled snapshot: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn module(engine: &Engine) -> Module {
        Module::new(
            engine,
            r#"(module (memory (export "m") 1) (data (i32.const 16) "snapshot")
                (func (export "f") (result i32) i32.const 42))"#,
        )
        .unwrap()
    }

    fn answer(engine: &Engine, module: &Module) -> i32 {
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        f.call(&mut store, ()).unwrap()
    }

    #[test]
    fn a_saved_module_loads_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let path = path_for(&dir.path().join("t.wasm"));
        save(&path, &module(&engine)).unwrap();
        let loaded = load(&engine, &path).expect("loads");
        assert_eq!(answer(&engine, &loaded), 42);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "no temporary files left: {names:?}"
        );
    }

    #[test]
    fn every_damaged_byte_position_tried_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let path = path_for(&dir.path().join("t.wasm"));
        save(&path, &module(&engine)).unwrap();
        let good = std::fs::read(&path).unwrap();
        // Each damaged copy is a new file, as one left by a crash or found after a restart
        // would be to this process (a file it verified once is not summed again).
        let replace = |bytes: &[u8]| {
            let tmp = dir.path().join("next");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        for at in (0..good.len()).step_by(97).chain([good.len() - 1]) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            replace(&bad);
            assert!(load(&engine, &path).is_none(), "a flipped byte at {at}");
        }
        replace(&good[..good.len() / 2]);
        assert!(load(&engine, &path).is_none(), "a torn file");
        replace(&good);
        assert!(load(&engine, &path).is_some(), "whole again");
    }

    #[test]
    fn saved_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("t.wasm"));
        save(&path, &module(&engine())).unwrap();
        for file in [path.clone(), sum_path(&path)] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", file.display());
        }
    }

    #[test]
    fn a_missing_sum_or_module_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let path = path_for(&dir.path().join("t.wasm"));
        assert!(load(&engine, &path).is_none());
        save(&path, &module(&engine)).unwrap();
        std::fs::remove_file(sum_path(&path)).unwrap();
        assert!(load(&engine, &path).is_none());
    }

    #[test]
    fn a_module_from_a_differently_configured_engine_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("t.wasm"));
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        save(&path, &module(&other)).unwrap();
        assert!(load(&engine(), &path).is_none());
    }
}
