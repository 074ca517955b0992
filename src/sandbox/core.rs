//! The sandbox's state and its work: snapshots, instances, warm reuse, and calls under limits.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use wasmtime::{Engine, Linker};

use super::code_cache::CodeCache;
use super::function_cache::FunctionCache;
use super::pool::WarmPool;
use super::snapshot::{self, SnapshotSource, Snapshots};
use super::{
    CallError, Limits, PackageSet, PythonRuntime, SandboxConfig, SandboxError, Script, engine,
    scheduler,
};
use crate::host::HostState;

mod call;

/// What one tenant holds in the sandbox's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantResidency {
    /// The tenant.
    pub tenant: String,
    /// Its idle warm instances.
    pub warm_instances: usize,
    /// Whether its snapshot module is loaded.
    pub snapshot_loaded: bool,
}

/// The sandbox's state: the engine, per-tenant snapshots, warm instances and the fair
/// scheduler. [`super::Sandbox`] runs its guest-facing work on the sandbox's own threads.
pub(crate) struct SandboxCore {
    engine: Engine,
    runtime: Arc<PythonRuntime>,
    snapshots: Snapshots,
    warm: WarmPool,
    code: CodeCache,
    slots: Arc<Semaphore>,
    scheduler: Arc<scheduler::CpuScheduler>,
    config: SandboxConfig,
    /// Whether the kernel has `PAGEMAP_SCAN`, so dirty pages stay resident between instances.
    pagemap_scan: bool,
    _ticker: engine::EpochTicker,
}

impl SandboxCore {
    /// Builds the engine and linker for `runtime`.
    pub fn new(runtime: PythonRuntime, config: SandboxConfig) -> Result<Self, SandboxError> {
        // Snapshots hold each tenant's str hash secret and imported state; compiled modules
        // hold the same memory images: no other local user may read them.
        // Tenants' packages are their code: private as well.
        for private in [snapshot::SNAPSHOTS_DIR, super::PACKAGES_DIR] {
            let dir = config.cache_dir.join(private);
            crate::private_fs::ensure_private_dir(&dir).map_err(|e| {
                SandboxError::snapshot(format!("cache directory {}", dir.display()), e)
            })?;
        }
        let functions = Arc::new(FunctionCache::new(
            snapshot::runtime_dir(&config.cache_dir, &runtime).join("functions"),
        ));
        let settings = engine::EngineSettings {
            max_instances: config.max_instances,
            max_memory_bytes: config.max_memory_bytes,
            keep_resident_bytes: config.keep_resident_bytes,
            idle_slots: config.idle_slots,
            functions: functions.clone(),
            perf_map: config.perf_map,
        };
        let (engine, pagemap_scan) = engine::build(&settings)?;
        // Compiled snapshots used to live in wasmtime's own cache, up to 32 GiB of them.
        let old_cache = config.cache_dir.join(engine::OLD_COMPILED_CACHE_DIR);
        if old_cache.exists() {
            let _ = std::thread::Builder::new()
                .name("pubfn-old-cache".into())
                .spawn(move || std::fs::remove_dir_all(old_cache));
        }
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut HostState| {
            &mut state.wasi
        })
        .map_err(|e| SandboxError::engine("linking WASI", e))?;
        crate::host::add_to_linker(&mut linker)
            .map_err(|e| SandboxError::engine("linking pq", e))?;
        let runtime = Arc::new(runtime);
        let snapshots = Snapshots::new(
            engine.clone(),
            Arc::new(linker),
            runtime.clone(),
            &config.cache_dir,
            functions,
        );
        // A tenant holding no turn preempts: bumping the epoch makes running guests check in.
        let preempt_engine = engine.weak();
        let scheduler = scheduler::CpuScheduler::new(config.cpu_turns, move || {
            if let Some(engine) = preempt_engine.upgrade() {
                engine.increment_epoch();
            }
        });
        let ticking = Arc::downgrade(&scheduler);
        let ticker = engine::EpochTicker::start(&engine, move || {
            if let Some(scheduler) = ticking.upgrade() {
                scheduler.tick();
            }
        })
        .map_err(|e| SandboxError::engine("starting the epoch ticker", e))?;
        Ok(SandboxCore {
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            scheduler,
            warm: WarmPool::new(config.warm_max_idle),
            code: CodeCache::default(),
            engine,
            runtime,
            snapshots,
            config,
            pagemap_scan,
            _ticker: ticker,
        })
    }

    /// The engine, for benchmarks and diagnostics.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The runtime.
    pub fn runtime(&self) -> &PythonRuntime {
        &self.runtime
    }

    /// Where snapshots and compiled code are cached.
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.config.cache_dir
    }

    /// Whether dirty pages stay resident between instances (the kernel has `PAGEMAP_SCAN`).
    pub fn keeps_pages_resident(&self) -> bool {
        self.pagemap_scan
    }

    /// Loads (or builds) `tenant`'s snapshot ahead of its first request.
    pub async fn prepare_tenant(&self, tenant: &str) -> Result<SnapshotSource, SandboxError> {
        Ok(self
            .snapshots
            .for_tenant(tenant, None, snapshot::Urgency::Background)
            .await?
            .1)
    }

    /// Loads (or builds, importing its preload list) `tenant`'s snapshot with `packages`,
    /// now: the check of a new package set, whose failure the tenant is told.
    pub async fn prepare_packages(
        &self,
        tenant: &str,
        packages: &PackageSet,
    ) -> Result<SnapshotSource, SandboxError> {
        Ok(self
            .snapshots
            .for_tenant(tenant, Some(packages), snapshot::Urgency::Now)
            .await?
            .1)
    }

    /// Drops everything held for `tenant`: its snapshot and idle warm instances.
    pub async fn forget_tenant(&self, tenant: &str) {
        self.warm.forget_tenant(tenant);
        self.code.forget_tenant(tenant);
        self.snapshots.forget(tenant).await;
    }

    /// Releases what `tenant` holds in memory (its snapshot modules, idle warm instances and
    /// cached code), keeping its snapshots on disk.
    pub fn release_tenant(&self, tenant: &str) {
        self.warm.forget_tenant(tenant);
        self.code.forget_tenant(tenant);
        self.snapshots.unload(tenant);
    }

    /// The snapshots' load signal and counts.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Drops `tenant`'s idle warm instances and cached code (its endpoints changed).
    pub fn forget_instances(&self, tenant: &str) {
        self.warm.forget_tenant(tenant);
        self.code.forget_tenant(tenant);
    }

    /// Number of idle warm instances.
    pub fn idle_warm_instances(&self) -> usize {
        self.warm.idle_count()
    }

    /// What each tenant holds in memory: idle warm instances, and whether its snapshot is
    /// loaded.
    pub fn residency(&self) -> Vec<TenantResidency> {
        let mut idle = self.warm.idle_by_tenant();
        let mut residency: Vec<TenantResidency> = self
            .snapshots
            .loaded_tenants()
            .into_iter()
            .map(|tenant| TenantResidency {
                warm_instances: idle.remove(&tenant).unwrap_or(0),
                snapshot_loaded: true,
                tenant,
            })
            .collect();
        residency.extend(
            idle.into_iter()
                .map(|(tenant, warm_instances)| TenantResidency {
                    tenant,
                    warm_instances,
                    snapshot_loaded: false,
                }),
        );
        residency
    }

    /// The largest memory limit an endpoint may ask for.
    pub fn max_memory_bytes(&self) -> usize {
        self.config.max_memory_bytes
    }

    /// Engine instance slots taken (running calls and idle warm instances), and the maximum.
    pub fn instance_slots(&self) -> (usize, usize) {
        let max = self.config.max_instances as usize;
        (max - self.slots.available_permits(), max)
    }

    /// Instantiates `tenant`'s snapshot and drops the instance: the cost every strict request
    /// pays before any Python runs. Used by benchmarks and start-up checks.
    pub async fn instantiate_and_drop(&self, tenant: &str) -> Result<(), CallError> {
        let limits = Limits::default();
        let deadline = Instant::now() + limits.wall_time();
        let turn = self.turn(tenant, &limits, deadline, None).await?;
        let instance = self
            .instantiate(tenant, None, Arc::from(""), &limits, deadline, turn)
            .await?;
        drop(instance);
        Ok(())
    }

    /// Compiles `script` in `tenant`'s sandbox without running it: the deploy-time check.
    pub async fn check_script(
        &self,
        tenant: &str,
        packages: Option<&PackageSet>,
        script: Script,
        limits: &Limits,
    ) -> Result<(), CallError> {
        let limits = &limits.for_compile_check();
        let deadline = Instant::now() + limits.wall_time();
        let turn = self.turn(tenant, limits, deadline, None).await?;
        let mut instance = self
            .instantiate(
                tenant,
                packages,
                script.source().clone(),
                limits,
                deadline,
                turn,
            )
            .await?;
        instance.compile(limits, deadline).await
    }
}
