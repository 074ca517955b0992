//! The wasmtime sandbox: one engine, per-tenant interpreter snapshots, and calls into them
//! under hard limits. Knows nothing of HTTP or Postgres; it runs a [`Call`] and returns a
//! [`Reply`] or a [`CallError`] that says exactly what went wrong.

mod call;
mod code_cache;
mod compiled;
mod core;
mod cpu;
pub mod engine;
pub mod entropy;
mod error;
mod executor;
mod function_cache;
pub mod instance;
pub mod limits;
pub mod meter;
pub mod packages;
pub mod pool;
pub mod runtime;
pub mod scheduler;
pub mod snapshot;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;

pub use call::{Call, Isolation, Reply, Script};
pub use entropy::CallSeed;
pub use error::{CallError, CallErrorKind, SandboxError};
pub use limits::Limits;
pub use meter::CallMeter;
pub use packages::PackageSet;
pub use pool::WarmKey;
pub use runtime::PythonRuntime;
pub use snapshot::SnapshotSource;

pub use crate::host::Capabilities;
use core::SandboxCore;
pub use core::TenantResidency;
use executor::{AbortOnDrop, Executor, lower_thread_priority};

/// The folder of the cache directory holding installed package sets.
pub const PACKAGES_DIR: &str = "packages";

/// Settings of a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where snapshots and compiled code are cached.
    pub cache_dir: PathBuf,
    /// Instances alive at once across all tenants.
    pub max_instances: u32,
    /// The largest memory limit any endpoint may be given, in bytes.
    pub max_memory_bytes: usize,
    /// Requests a warm instance serves before it is retired.
    pub warm_max_requests: u32,
    /// Idle warm instances kept per endpoint version.
    pub warm_max_idle: usize,
    /// Guests running wasm at once, shared fairly between tenants (default: one per core).
    pub cpu_turns: usize,
    /// Dirty memory per instance slot kept (and restored in place) when an instance ends.
    pub keep_resident_bytes: usize,
    /// Unused instance slots that keep their memory for reuse.
    pub idle_slots: u32,
    /// Name the guests' JIT code for `perf` (off unless asked for).
    pub perf_map: bool,
}

impl SandboxConfig {
    /// Defaults, caching under `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Self {
        SandboxConfig {
            cache_dir,
            max_instances: 256,
            max_memory_bytes: 1 << 30,
            warm_max_requests: 1_000,
            warm_max_idle: 4,
            cpu_turns: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_resident_bytes: engine::DEFAULT_KEEP_RESIDENT_BYTES,
            idle_slots: engine::DEFAULT_IDLE_SLOTS,
            perf_map: false,
        }
    }
}

/// The sandbox: process-wide engine state plus per-tenant snapshots, and its own threads.
///
/// Guest code and snapshot building run on the sandbox's executor, never on the caller's: a
/// guest computing through its whole CPU budget would otherwise hold a thread of the HTTP front
/// end, and tokio polls its I/O driver only between tasks, so every other connection would
/// wait behind it. On its own threads, the kernel shares the cores between the front end and
/// the guests, and [`scheduler::CpuScheduler`] shares the guests' turns between tenants.
pub struct Sandbox {
    core: Arc<SandboxCore>,
    executor: Executor,
}

impl Sandbox {
    /// Builds the engine and linker for `runtime`, and the executor's threads.
    pub fn new(runtime: PythonRuntime, config: SandboxConfig) -> Result<Self, SandboxError> {
        // Guests run only on their turns, one per core; the other half of the threads are
        // free to start new requests' instances meanwhile, so a newcomer reaches the scheduler
        // (and preempts) at once instead of waiting for a busy thread's next tick.
        let threads = 2 * config.cpu_turns.max(1);
        let core = Arc::new(SandboxCore::new(runtime, config)?);
        let executor = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("pubfn-sandbox")
            .on_thread_start(lower_thread_priority)
            .enable_all()
            .build()
            .map_err(|e| SandboxError::engine("starting the sandbox threads", e))?;
        Ok(Sandbox {
            core,
            executor: Executor(Some(executor)),
        })
    }

    /// The engine, for benchmarks and diagnostics.
    pub fn engine(&self) -> &Engine {
        self.core.engine()
    }

    /// Whether dirty pages stay resident between instances: the kernel has `PAGEMAP_SCAN`
    /// (Linux 6.7+). Without it every fresh instance faults its pages in again.
    pub fn keeps_pages_resident(&self) -> bool {
        self.core.keeps_pages_resident()
    }

    /// Loads (or builds) `tenant`'s snapshot ahead of its first request.
    pub async fn prepare_tenant(&self, tenant: &str) -> Result<SnapshotSource, SandboxError> {
        let tenant = tenant.to_string();
        self.on_executor(|core| async move { core.prepare_tenant(&tenant).await })
            .await
            .map_err(|e| SandboxError::snapshot("preparing it", e))?
    }

    /// Loads or builds `tenant`'s snapshot with `packages`, importing the set's preload list:
    /// a module that raises or runs past the tenant's CPU limit is a
    /// [`SandboxError::Preload`] with its traceback.
    pub async fn prepare_packages(
        &self,
        tenant: &str,
        packages: Arc<PackageSet>,
    ) -> Result<SnapshotSource, SandboxError> {
        let tenant = tenant.to_string();
        self.on_executor(|core| async move { core.prepare_packages(&tenant, &packages).await })
            .await
            .map_err(|e| SandboxError::snapshot("preparing it", e))?
    }

    /// Drops everything held for `tenant`: its snapshot and idle warm instances.
    pub async fn forget_tenant(&self, tenant: &str) {
        self.core.forget_tenant(tenant).await
    }

    /// Releases what `tenant` holds in memory (snapshot modules, idle warm instances, cached
    /// code); its snapshots stay on disk for its next request.
    pub fn release_tenant(&self, tenant: &str) {
        self.core.release_tenant(tenant)
    }

    /// Whether the sandbox can still serve a tenant it has not seen: the runtime's stdlib is
    /// readable (every instance preopens it) and the snapshot cache is writable (a new
    /// tenant's snapshot is written there). Readiness, not a health check of running guests.
    pub async fn check_ready(&self) -> Result<(), SandboxError> {
        let lib = self.core.runtime().lib_dir.clone();
        let snapshots = self.core.snapshots().dir().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::fs::read_dir(&lib).map_err(|e| {
                SandboxError::runtime(
                    format!("the stdlib at {}", lib.display()),
                    Some(Box::new(e)),
                )
            })?;
            std::fs::create_dir_all(&snapshots)
                .and_then(|()| tempfile::tempfile_in(&snapshots).map(drop))
                .map_err(|e| {
                    SandboxError::snapshot(format!("writing to {}", snapshots.display()), e)
                })
        })
        .await
        .map_err(|e| SandboxError::snapshot("the readiness check stopped", e))?
    }

    /// Woken after every snapshot load into memory (for the memory budget).
    pub fn snapshot_loaded_signal(&self) -> Arc<tokio::sync::Notify> {
        self.core.snapshots().loaded_signal()
    }

    /// Snapshots loaded from disk, and built, since start.
    pub fn snapshot_loads(&self) -> (u64, u64) {
        self.core.snapshots().loads()
    }

    /// Drops `tenant`'s idle warm instances and cached code (its endpoints changed).
    pub fn forget_instances(&self, tenant: &str) {
        self.core.forget_instances(tenant)
    }

    /// Number of idle warm instances.
    pub fn idle_warm_instances(&self) -> usize {
        self.core.idle_warm_instances()
    }

    /// What each tenant holds in memory (for `/metrics`).
    pub fn residency(&self) -> Vec<TenantResidency> {
        self.core.residency()
    }

    /// The largest memory limit an endpoint may ask for.
    pub fn max_memory_bytes(&self) -> usize {
        self.core.max_memory_bytes()
    }

    /// The runtime the sandbox runs.
    pub fn runtime(&self) -> &PythonRuntime {
        self.core.runtime()
    }

    /// The module names tenants' packages may not take (the runtime's own).
    pub fn reserved_module_names(&self) -> &crate::packages::ReservedNames {
        &self.core.runtime().reserved_names
    }

    /// Where package sets are installed on this node (beside the snapshots built from them).
    pub fn packages_dir(&self) -> PathBuf {
        self.core.cache_dir().join(PACKAGES_DIR)
    }

    /// Engine instance slots taken (running calls and idle warm instances), and the maximum.
    pub fn instance_slots(&self) -> (usize, usize) {
        self.core.instance_slots()
    }

    /// Instantiates `tenant`'s snapshot and drops the instance: the cost every strict request
    /// pays before any Python runs. Used by benchmarks and start-up checks.
    pub async fn instantiate_and_drop(&self, tenant: &str) -> Result<(), CallError> {
        let tenant = tenant.to_string();
        self.on_executor(|core| async move { core.instantiate_and_drop(&tenant).await })
            .await
            .map_err(CallError::host)?
    }

    /// Compiles `script` in `tenant`'s sandbox without running it: the deploy-time check.
    pub async fn check_script(
        &self,
        tenant: &str,
        packages: Option<Arc<PackageSet>>,
        script: Script,
        limits: &Limits,
    ) -> Result<(), CallError> {
        let (tenant, limits) = (tenant.to_string(), *limits);
        self.on_executor(|core| async move {
            core.check_script(&tenant, packages.as_deref(), script, &limits)
                .await
        })
        .await
        .map_err(CallError::host)?
    }

    /// Runs one request through its endpoint's handler.
    pub async fn handle(&self, call: Call) -> Result<Reply, CallError> {
        let ticket = self
            .core
            .early_ticket(&call.tenant, call.packages.as_deref());
        self.on_executor(|core| async move { core.handle(call, ticket).await })
            .await
            .map_err(CallError::host)?
    }

    /// Runs `work` on the sandbox's threads; dropping the returned future cancels it there.
    async fn on_executor<F, Fut>(&self, work: F) -> Result<Fut::Output, String>
    where
        F: FnOnce(Arc<SandboxCore>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let task = self.executor.spawn(work(self.core.clone()));
        let _cancel = AbortOnDrop(task.abort_handle());
        task.await.map_err(|e| {
            tracing::error!("a sandbox task failed: {e}");
            format!("the sandbox task failed: {e}")
        })
    }
}
