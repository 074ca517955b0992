//! Pre-initialised interpreters, one per tenant.
//!
//! wasmtime-wizer runs the driver's `wizer-initialize` (CPython start-up plus the common
//! imports) and snapshots the memory. Every instance of a snapshot shares what it captured,
//! including CPython's str hash secret, so each tenant gets a snapshot of its own: a tenant
//! that learns its secret can craft hash floods only against itself. The snapshot module is
//! kept on disk, and its compiled code in wasmtime's cache, so a restart neither re-runs Wizer
//! nor recompiles. Other runtimes' snapshots are pruned once left alone for an hour
//! (`snapshot/prune.rs`).

mod prune;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};
use wasmtime_wizer::{WasmtimeWizer, Wizer};

use super::SandboxError;
use super::function_cache::FunctionCache;
use super::instance::new_host_state;
use super::runtime::PythonRuntime;
use crate::host::HostState;

/// Time the one-off initialisation may run (CPython start-up takes well under 1 s). Measured
/// in time, not in epoch ticks: the scheduler bumps the epoch to preempt guests.
const INIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Memory the initialisation may use.
const INIT_MEMORY_BYTES: usize = 256 << 20;

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
    loaded: Mutex<HashMap<String, Arc<InstancePre<HostState>>>>,
    /// Builds are serialised: each compiles with every core, so two at once only thrash.
    build_lock: tokio::sync::Mutex<()>,
    /// Callers waiting for a snapshot they need now (a request, a deploy); background
    /// builds step aside while there are any.
    demanded: std::sync::atomic::AtomicUsize,
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
        }
    }

    /// Whether `tenant`'s snapshot is in memory, ready to instantiate.
    pub fn is_loaded(&self, tenant: &str) -> bool {
        self.lock_loaded().contains_key(tenant)
    }

    /// The tenants whose snapshots are in memory.
    pub fn loaded_tenants(&self) -> Vec<String> {
        self.lock_loaded().keys().cloned().collect()
    }

    /// `tenant`'s snapshot, if it is in memory.
    pub fn loaded(&self, tenant: &str) -> Option<Arc<InstancePre<HostState>>> {
        self.lock_loaded().get(tenant).cloned()
    }

    /// The ready-to-instantiate snapshot of `tenant`, loading or building it as needed.
    pub async fn for_tenant(
        &self,
        tenant: &str,
        urgency: Urgency,
    ) -> Result<(Arc<InstancePre<HostState>>, SnapshotSource), SandboxError> {
        use std::sync::atomic::Ordering;
        if let Some(pre) = self.lock_loaded().get(tenant) {
            return Ok((pre.clone(), SnapshotSource::Memory));
        }
        let _guard = match urgency {
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
        };
        if let Some(pre) = self.lock_loaded().get(tenant) {
            return Ok((pre.clone(), SnapshotSource::Memory));
        }
        let path = self.dir.join(format!("{}.wasm", tenant_file_key(tenant)));
        let (wasm, source) = match tokio::fs::read(&path).await {
            Ok(wasm) => (wasm, SnapshotSource::Disk),
            Err(_) => {
                let wasm = self.build(tenant).await?;
                write_atomically(&path, &wasm).await?;
                (wasm, SnapshotSource::Built)
            }
        };
        let pre = Arc::new(self.compile(wasm).await?);
        self.lock_loaded().insert(tenant.to_string(), pre.clone());
        Ok((pre, source))
    }

    /// Forgets a tenant's snapshot in memory and on disk (a deleted tenant, or a new secret).
    pub async fn forget(&self, tenant: &str) {
        self.lock_loaded().remove(tenant);
        let _ = tokio::fs::remove_file(self.dir.join(format!("{}.wasm", tenant_file_key(tenant))))
            .await;
    }

    fn lock_loaded(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<InstancePre<HostState>>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn compile(&self, wasm: Vec<u8>) -> Result<InstancePre<HostState>, SandboxError> {
        let (engine, linker) = (self.engine.clone(), self.linker.clone());
        let functions = self.functions.clone();
        // Compiling (or loading compiled code from wasmtime's cache) is blocking CPU work.
        tokio::task::spawn_blocking(move || {
            let module = Module::new(&engine, &wasm)?;
            functions.seal_if_used();
            linker.instantiate_pre(&module)
        })
        .await
        .map_err(|e| SandboxError::snapshot("compile task failed", e))?
        .map_err(|e| SandboxError::snapshot("compiling the snapshot", e))
    }

    async fn build(&self, tenant: &str) -> Result<Vec<u8>, SandboxError> {
        tracing::info!(tenant, "building a pre-initialised interpreter snapshot");
        let err = |what: &str, e: wasmtime::Error| SandboxError::snapshot(what, e);
        let wizer = Wizer::new();
        let (cx, instrumented) = wizer
            .instrument(&self.runtime.wasm)
            .map_err(|e| err("instrument", e))?;
        let engine = self.engine.clone();
        let module = tokio::task::spawn_blocking(move || Module::new(&engine, &instrumented))
            .await
            .map_err(|e| SandboxError::snapshot("compile task failed", e))?
            .map_err(|e| err("compiling the instrumented interpreter", e))?;

        let output = crate::host::OutputCapture::new(64 << 10);
        let state = new_host_state(
            &self.runtime,
            INIT_MEMORY_BYTES,
            &output,
            Default::default(),
        )?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let deadline = std::time::Instant::now() + INIT_DEADLINE;
        store.epoch_deadline_callback(move |_| {
            Ok(if std::time::Instant::now() >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(1)
            })
        });
        store.set_epoch_deadline(1);
        let instance = self
            .linker
            .instantiate_async(&mut store, &module)
            .await
            .map_err(|e| err("instantiating the interpreter", e))?;
        // The reactor's own constructors first, then CPython start-up: what Wizer::run does.
        for name in ["_initialize", wizer.get_init_func()] {
            let init = instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map_err(|e| err(&format!("finding export {name}"), e))?;
            init.call_async(&mut store, ()).await.map_err(|e| {
                SandboxError::snapshot(
                    format!("{name} failed; interpreter output: {}", output.take()),
                    e,
                )
            })?;
        }
        wizer
            .snapshot(
                &cx,
                &mut WasmtimeWizer {
                    store: &mut store,
                    instance,
                },
            )
            .await
            .map_err(|e| err("snapshot", e))
    }
}

/// The folder of the cache directory that holds every runtime's snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Where `runtime`'s snapshots (and the compiled functions they share) are cached.
pub fn runtime_dir(cache_dir: &std::path::Path, runtime: &PythonRuntime) -> PathBuf {
    cache_dir.join(SNAPSHOTS_DIR).join(&runtime.id[..16])
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
