//! The wasmtime sandbox: one engine, per-tenant interpreter snapshots, and calls into them
//! under hard limits. Knows nothing of HTTP or Postgres; it runs a [`Call`] and returns a
//! [`Reply`] or a [`CallError`] that says exactly what went wrong.

pub mod engine;
mod error;
pub mod instance;
pub mod limits;
pub mod pool;
pub mod runtime;
pub mod snapshot;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Linker};

pub use error::{CallError, CallErrorKind, SandboxError};
pub use limits::Limits;
pub use pool::WarmKey;
pub use runtime::PythonRuntime;
pub use snapshot::SnapshotSource;

pub use crate::host::Capabilities;
use crate::host::{GuestRequest, GuestResponse, HostState};
use instance::Instance;
use pool::WarmPool;
use snapshot::Snapshots;

/// How instances are shared between the requests of one endpoint version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A fresh instance from the snapshot for every request, dropped afterwards.
    #[default]
    Strict,
    /// Instances are reused by later requests of the same endpoint version.
    Warm,
}

/// One request for a handler.
#[derive(Clone)]
pub struct Call {
    /// Whose snapshot to run in.
    pub tenant: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// The script version (any string that changes when the script does).
    pub version: String,
    /// The handler's source.
    pub script: Arc<str>,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Limits for this call.
    pub limits: Limits,
    /// The request.
    pub request: GuestRequest,
    /// The tenant's databases, secrets and the endpoint's state, as far as it may use them.
    pub capabilities: Capabilities,
}

/// A handler's successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status, headers and body.
    pub response: GuestResponse,
    /// Captured stdout and stderr.
    pub output: String,
    /// Whether a warm instance was reused.
    pub reused_instance: bool,
}

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
        }
    }
}

/// The sandbox: process-wide engine state plus per-tenant snapshots.
pub struct Sandbox {
    engine: Engine,
    runtime: Arc<PythonRuntime>,
    snapshots: Snapshots,
    warm: WarmPool,
    slots: Arc<Semaphore>,
    config: SandboxConfig,
    _ticker: engine::EpochTicker,
}

impl Sandbox {
    /// Builds the engine and linker for `runtime`.
    pub fn new(runtime: PythonRuntime, config: SandboxConfig) -> Result<Self, SandboxError> {
        let settings = engine::EngineSettings {
            max_instances: config.max_instances,
            max_memory_bytes: config.max_memory_bytes,
        };
        let engine = engine::build(&settings, &config.cache_dir)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut HostState| {
            &mut state.wasi
        })
        .map_err(|e| SandboxError::Engine(format!("linking WASI: {e:#}")))?;
        crate::host::add_to_linker(&mut linker)
            .map_err(|e| SandboxError::Engine(format!("linking pq: {e:#}")))?;
        let runtime = Arc::new(runtime);
        let snapshots = Snapshots::new(
            engine.clone(),
            Arc::new(linker),
            runtime.clone(),
            &config.cache_dir,
        );
        let ticker = engine::EpochTicker::start(&engine)
            .map_err(|e| SandboxError::Engine(format!("starting the epoch ticker: {e}")))?;
        Ok(Sandbox {
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            warm: WarmPool::new(config.warm_max_idle),
            engine,
            runtime,
            snapshots,
            config,
            _ticker: ticker,
        })
    }

    /// The engine, for benchmarks and diagnostics.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads (or builds) `tenant`'s snapshot ahead of its first request.
    pub async fn prepare_tenant(&self, tenant: &str) -> Result<SnapshotSource, SandboxError> {
        Ok(self
            .snapshots
            .for_tenant(tenant, snapshot::Urgency::Background)
            .await?
            .1)
    }

    /// Drops everything held for `tenant`: its snapshot and idle warm instances.
    pub async fn forget_tenant(&self, tenant: &str) {
        self.warm.forget_tenant(tenant);
        self.snapshots.forget(tenant).await;
    }

    /// Number of idle warm instances.
    pub fn idle_warm_instances(&self) -> usize {
        self.warm.idle_count()
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
        let instance = self
            .instantiate(tenant, Arc::from(""), &limits, deadline)
            .await?;
        drop(instance);
        Ok(())
    }

    /// Compiles `script` in `tenant`'s sandbox without running it: the deploy-time check.
    pub async fn check_script(
        &self,
        tenant: &str,
        script: Arc<str>,
        limits: &Limits,
    ) -> Result<(), CallError> {
        let deadline = Instant::now() + limits.wall_time();
        let mut instance = self.instantiate(tenant, script, limits, deadline).await?;
        instance.compile(limits, deadline).await
    }

    /// Runs one request through its endpoint's handler.
    pub async fn handle(&self, call: Call) -> Result<Reply, CallError> {
        let deadline = Instant::now() + call.limits.wall_time();
        let key = WarmKey {
            tenant: call.tenant.clone(),
            endpoint: call.endpoint,
            version: call.version,
            limits: call.limits,
        };
        let warm = call.isolation == Isolation::Warm;
        let (mut instance, reused) = match warm.then(|| self.warm.take(&key)).flatten() {
            Some(instance) => (instance, true),
            None => {
                let mut instance = self
                    .instantiate(&call.tenant, call.script, &call.limits, deadline)
                    .await?;
                // Module-level code may use the capabilities too.
                instance.store.data_mut().capabilities = call.capabilities.clone();
                instance.store.data_mut().deadline = Some(deadline);
                instance.load(&call.limits, deadline).await?;
                (instance, false)
            }
        };
        let state = instance.store.data_mut();
        state.reset_call();
        state.request = Some(Arc::new(call.request));
        state.capabilities = call.capabilities;
        state.deadline = Some(deadline);
        instance.handle(&call.limits, deadline).await?;
        let response = instance.store.data_mut().response.take().ok_or_else(|| {
            CallError::host("the driver finished without sending a response".into())
        })?;
        let output = instance.output.take();
        // Any failure above returned early and dropped the instance: only a clean one is kept,
        // and not one that ran into its memory limit, even if the handler recovered.
        let healthy = !instance.store.data().limiter.memory_refused;
        if warm && healthy && instance.served < self.config.warm_max_requests {
            instance.store.data_mut().reset_call();
            self.warm.put(key, instance);
        }
        Ok(Reply {
            response,
            output,
            reused_instance: reused,
        })
    }

    async fn instantiate(
        &self,
        tenant: &str,
        script: Arc<str>,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Instance, CallError> {
        if limits.memory_bytes > self.config.max_memory_bytes {
            return Err(CallError::host(format!(
                "memory limit {} exceeds the sandbox's maximum {}",
                limits.memory_bytes, self.config.max_memory_bytes
            )));
        }
        let (pre, _) = self
            .snapshots
            .for_tenant(tenant, snapshot::Urgency::Now)
            .await
            .map_err(|e| CallError::host(e.to_string()))?;
        // Waiting for a free slot counts against the call's wall-clock limit.
        let slot = tokio::time::timeout_at(deadline.into(), self.acquire_slot())
            .await
            .map_err(|_| CallError {
                kind: CallErrorKind::WallLimit {
                    limit_ms: limits.wall_ms,
                },
                output: String::new(),
            })??;
        Instance::new(&pre, &self.runtime, limits, script, slot).await
    }

    /// An engine instance slot: idle warm instances give theirs up before a request waits.
    async fn acquire_slot(&self) -> Result<OwnedSemaphorePermit, CallError> {
        loop {
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => return Ok(permit),
                Err(_) if self.warm.evict_one() => continue,
                Err(_) => break,
            }
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::host("sandbox is shutting down".into()))
    }
}
