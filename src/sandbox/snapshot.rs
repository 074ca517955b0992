//! Pre-initialised interpreters, one per tenant.
//!
//! wasmtime-wizer runs the driver's `wizer-initialize` (CPython start-up plus the common
//! imports) and snapshots the memory. Every instance of a snapshot shares what it captured,
//! including CPython's str hash secret, so each tenant gets a snapshot of its own: a tenant
//! that learns its secret can craft hash floods only against itself. The snapshot module is
//! kept on disk, and its compiled code in wasmtime's cache, so a restart neither re-runs Wizer
//! nor recompiles. Other runtimes' snapshots are pruned once left alone for an hour
//! (`snapshot/prune.rs`).

mod build;
mod prune;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, InstancePre, Linker, Module};

use super::SandboxError;
use super::compiled;
use super::function_cache::FunctionCache;
use super::packages::PackageSet;
use super::runtime::PythonRuntime;
use crate::host::HostState;

/// Where a snapshot came from, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// Already loaded in this process.
    Memory,
    /// Read from the on-disk cache.
    Disk,
    /// Made now by running Wizer.
    Built,
}

/// The per-tenant snapshots of one runtime.
pub struct Snapshots {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    runtime: Arc<PythonRuntime>,
    dir: PathBuf,
    /// Sealed once a snapshot module has compiled.
    functions: Arc<FunctionCache>,
    /// By tenant and package set hash (empty without packages).
    loaded: Mutex<HashMap<SnapshotKey, Arc<InstancePre<HostState>>>>,
    /// Builds are serialised: each compiles with every core, so two at once only thrash.
    build_lock: tokio::sync::Mutex<()>,
    /// Callers waiting for a snapshot they need now (a request, a deploy); background
    /// builds step aside while there are any.
    demanded: std::sync::atomic::AtomicUsize,
    /// One lock per snapshot being loaded or built.
    key_locks: Mutex<HashMap<SnapshotKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Woken after every load into memory, so that the memory budget is checked at once.
    loaded_signal: Arc<tokio::sync::Notify>,
    /// Snapshots loaded from disk and built, since start.
    disk_loads: std::sync::atomic::AtomicU64,
    builds: std::sync::atomic::AtomicU64,
}

/// Why a snapshot is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Someone is waiting for it.
    Now,
    /// Ahead of need (a tenant was just created): after every `Now`.
    Background,
}

impl Snapshots {
    /// Snapshots of `runtime`, cached under `cache_dir`.
    pub fn new(
        engine: Engine,
        linker: Arc<Linker<HostState>>,
        runtime: Arc<PythonRuntime>,
        cache_dir: &std::path::Path,
        functions: Arc<FunctionCache>,
    ) -> Self {
        let dir = runtime_dir(cache_dir, &runtime);
        let (root, current) = (cache_dir.join(SNAPSHOTS_DIR), runtime.id[..16].to_string());
        // Off the start-up path: removing a few thousand snapshots takes a while.
        let pruning = std::thread::Builder::new()
            .name("pubfn-snapshot-prune".into())
            .spawn(move || prune::prune_stale(&root, &current, prune::STALE_AFTER));
        if let Err(e) = pruning {
            tracing::warn!("not pruning old snapshots: {e}");
        }
        Snapshots {
            engine,
            linker,
            runtime,
            dir,
            functions,
            loaded: Mutex::default(),
            build_lock: Default::default(),
            demanded: Default::default(),
            key_locks: Default::default(),
            loaded_signal: Default::default(),
            disk_loads: Default::default(),
            builds: Default::default(),
        }
    }

    /// Whether `tenant`'s snapshot (with `packages`) is in memory, ready to instantiate.
    pub fn is_loaded(&self, tenant: &str, packages: Option<&PackageSet>) -> bool {
        self.lock_loaded().contains_key(&key(tenant, packages))
    }

    /// The tenants with a snapshot in memory (once each, whatever their package sets).
    pub fn loaded_tenants(&self) -> Vec<String> {
        let mut tenants: Vec<String> = self.lock_loaded().keys().map(|k| k.0.clone()).collect();
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// `tenant`'s snapshot with `packages`, if it is in memory.
    pub fn loaded(
        &self,
        tenant: &str,
        packages: Option<&PackageSet>,
    ) -> Option<Arc<InstancePre<HostState>>> {
        self.lock_loaded().get(&key(tenant, packages)).cloned()
    }

    /// The ready-to-instantiate snapshot of `tenant` with `packages`, loading or building it
    /// as needed.
    pub async fn for_tenant(
        &self,
        tenant: &str,
        packages: Option<&PackageSet>,
        urgency: Urgency,
    ) -> Result<(Arc<InstancePre<HostState>>, SnapshotSource), SandboxError> {
        let key = key(tenant, packages);
        if let Some(pre) = self.lock_loaded().get(&key) {
            return Ok((pre.clone(), SnapshotSource::Memory));
        }
        // One load or build per snapshot at a time: the callers behind the first get its result.
        let key_lock = self.key_lock(&key);
        let _key_guard = key_lock.lock().await;
        if let Some(pre) = self.lock_loaded().get(&key) {
            return Ok((pre.clone(), SnapshotSource::Memory));
        }
        let path = self.dir.join(snapshot_file_name(tenant, packages));
        let compiled_path = compiled::path_for(&path);
        // A tenant seen before (released under the memory budget, or before a restart) comes
        // back by mapping its compiled module: 0.5 ms instead of a 58 ms `Module::new`.
        let mapped = {
            let (engine, compiled_path) = (self.engine.clone(), compiled_path.clone());
            tokio::task::spawn_blocking(move || compiled::load(&engine, &compiled_path))
                .await
                .map_err(|e| SandboxError::snapshot("load task failed", e))?
        };
        let (module, source) = match mapped {
            Some(module) => (module, SnapshotSource::Disk),
            None => {
                // Loads from disk run side by side: only builds are serialised. Reloads of
                // tenants released under the memory budget queued behind one another on the
                // build lock (bench h: 8 clients, first response of a reloaded tenant p50 773 ms).
                let (wasm, source) = match tokio::fs::read(&path).await {
                    Ok(wasm) => (wasm, SnapshotSource::Disk),
                    Err(_) => {
                        let _build_guard = self.build_turn(urgency).await;
                        let wasm = self.build(tenant, packages).await?;
                        write_atomically(&path, &wasm).await?;
                        (wasm, SnapshotSource::Built)
                    }
                };
                let module = self.compile(wasm).await?;
                // Inside this snapshot's lock, as the wasm is written (~25 ms beside a 0.75 s
                // build): a tenant forgotten meanwhile must not find it again.
                let saved = module.clone();
                let result =
                    tokio::task::spawn_blocking(move || compiled::save(&compiled_path, &saved))
                        .await
                        .map_err(|e| SandboxError::snapshot("save task failed", e))?;
                match result {
                    // The compiled module is all a later load reads: without the wasm, a
                    // damaged or outdated one (another wasmtime) means building again
                    // (~1.1 s instead of 0.75 s), and each tenant keeps one file, not two.
                    Ok(()) => {
                        if let Err(e) = tokio::fs::remove_file(&path).await {
                            tracing::warn!("removing {}: {e}", path.display());
                        }
                    }
                    Err(e) => tracing::warn!("saving a compiled snapshot: {e:#}"),
                }
                (module, source)
            }
        };
        let pre = Arc::new(
            self.linker
                .instantiate_pre(&module)
                .map_err(|e| SandboxError::snapshot("linking the snapshot", e))?,
        );
        self.lock_loaded().insert(key, pre.clone());
        let counter = match source {
            SnapshotSource::Built => &self.builds,
            _ => &self.disk_loads,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.loaded_signal.notify_one();
        Ok((pre, source))
    }

    /// The lock of one snapshot's load or build.
    fn key_lock(&self, key: &SnapshotKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .key_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Locks nobody holds or waits for are dropped as others are made: the map stays as
        // small as the number of loads in progress.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(key.clone()).or_default().clone()
    }

    /// The turn to build: builds are serialised, since each compiles with every core, and
    /// background builds step aside while anyone waits for one now.
    async fn build_turn(&self, urgency: Urgency) -> tokio::sync::MutexGuard<'_, ()> {
        match urgency {
            Urgency::Now => {
                self.demanded.fetch_add(1, Ordering::SeqCst);
                let guard = self.build_lock.lock().await;
                self.demanded.fetch_sub(1, Ordering::SeqCst);
                guard
            }
            Urgency::Background => loop {
                // A flood of new tenants must not make a deploy wait behind all their builds.
                while self.demanded.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                let guard = self.build_lock.lock().await;
                if self.demanded.load(Ordering::SeqCst) == 0 {
                    break guard;
                }
            },
        }
    }

    /// Drops a tenant's snapshots from memory, keeping them on disk: its next request loads
    /// the compiled snapshot again (the memory budget's release).
    pub fn unload(&self, tenant: &str) {
        self.lock_loaded().retain(|k, _| k.0 != tenant);
    }

    /// The directory of this runtime's snapshots.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Woken after every load into memory.
    pub fn loaded_signal(&self) -> Arc<tokio::sync::Notify> {
        self.loaded_signal.clone()
    }

    /// Snapshots loaded from disk, and built, since start.
    pub fn loads(&self) -> (u64, u64) {
        (
            self.disk_loads.load(Ordering::Relaxed),
            self.builds.load(Ordering::Relaxed),
        )
    }

    /// Forgets all of a tenant's snapshots in memory and on disk (a deleted tenant, or a new
    /// secret).
    pub async fn forget(&self, tenant: &str) {
        self.lock_loaded().retain(|k, _| k.0 != tenant);
        let prefix = tenant_file_key(tenant);
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }

    fn lock_loaded(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SnapshotKey, Arc<InstancePre<HostState>>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn compile(&self, wasm: Vec<u8>) -> Result<Module, SandboxError> {
        let engine = self.engine.clone();
        let functions = self.functions.clone();
        // Compiling is blocking CPU work (most functions come from `functions`, not Cranelift).
        tokio::task::spawn_blocking(move || {
            let module = Module::new(&engine, &wasm);
            functions.seal_if_used();
            module
        })
        .await
        .map_err(|e| SandboxError::snapshot("compile task failed", e))?
        .map_err(|e| SandboxError::snapshot("compiling the snapshot", e))
    }
}

/// The folder of the cache directory that holds every runtime's snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Where `runtime`'s snapshots (and the compiled functions they share) are cached.
pub fn runtime_dir(cache_dir: &std::path::Path, runtime: &PythonRuntime) -> PathBuf {
    cache_dir.join(SNAPSHOTS_DIR).join(&runtime.id[..16])
}

/// A snapshot's key in memory: the tenant and its package set's hash (empty without).
type SnapshotKey = (String, String);

fn key(tenant: &str, packages: Option<&PackageSet>) -> SnapshotKey {
    (
        tenant.to_string(),
        packages.map(|p| p.hash.clone()).unwrap_or_default(),
    )
}

/// `<tenant key>.wasm`, or `<tenant key>-<set hash>.wasm` with packages: all of a tenant's
/// snapshots start with its key, so forgetting it finds them all.
fn snapshot_file_name(tenant: &str, packages: Option<&PackageSet>) -> String {
    match packages {
        None => format!("{}.wasm", tenant_file_key(tenant)),
        Some(set) => format!("{}-{}.wasm", tenant_file_key(tenant), &set.hash[..32]),
    }
}

/// Tenant names never reach the filesystem as they are.
fn tenant_file_key(tenant: &str) -> String {
    hex::encode(&Sha256::digest(tenant.as_bytes())[..16])
}

async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let io = |e: std::io::Error| SandboxError::snapshot(format!("writing {}", path.display()), e);
    let dir = path.parent().expect("snapshot paths have a parent");
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}
