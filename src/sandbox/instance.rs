//! One guest instance: a `Store` with its `HostState`, and the calls into the driver's exports.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{InstancePre, Store, Trap, TypedFunc};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::cpu::GuestCpu;
use super::entropy::{CallEntropy, CallSeed};
use super::limits::Limits;
use super::meter::CallMeter;
use super::packages::{GUEST_PACKAGES_DIR, PackageSet};
use super::runtime::{GUEST_LIB_DIR, PythonRuntime};
use super::scheduler::CpuScheduler;
use super::{CallError, CallErrorKind, SandboxError};
use crate::host::abi::driver_status;
use crate::host::error_report::ReportKind;
use crate::host::{GuestLimiter, HostState, OutputCapture, ResponseLimits};

/// The host state of a new store: read-only stdlib, the tenant's package set read-only if it
/// has one, captured stdio, and nothing else.
pub(crate) fn new_host_state(
    runtime: &PythonRuntime,
    memory_bytes: usize,
    output: &OutputCapture,
    response_limits: ResponseLimits,
    packages: Option<&std::path::Path>,
    entropy: &CallEntropy,
) -> Result<HostState, SandboxError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(output.clone()).stderr(output.clone());
    // Randomness and the wall clock come from the call's seed, so a replay can repeat them.
    wasi.secure_random(entropy.random())
        .wall_clock(entropy.clock());
    // The stdlib is small local files read at import time: reading them inline is far cheaper
    // than a hop to the blocking thread pool for every read.
    wasi.allow_blocking_current_thread(true);
    // The same preopen, in the same order, as when the snapshot was taken: wasi-libc inside
    // the snapshot already holds this descriptor in its preopen table.
    wasi.preopened_dir(&runtime.lib_dir, GUEST_LIB_DIR, FsPerms::ReadOnly)
        .map_err(|e| {
            SandboxError::runtime(
                format!("opening {}", runtime.lib_dir.display()),
                Some(e.into()),
            )
        })?;
    // Second, for the same reason: a snapshot with packages was taken with both, in this order.
    if let Some(dir) = packages {
        wasi.preopened_dir(dir, GUEST_PACKAGES_DIR, FsPerms::ReadOnly)
            .map_err(|e| {
                SandboxError::runtime(format!("opening {}", dir.display()), Some(e.into()))
            })?;
    }
    Ok(HostState::new(
        wasi.build_p1(),
        GuestLimiter::new(memory_bytes),
        response_limits,
    ))
}

/// A live instance and the exports the host calls.
pub(crate) struct Instance {
    pub store: Store<HostState>,
    load: TypedFunc<(), i32>,
    handle: TypedFunc<(), i32>,
    compile: TypedFunc<(), i32>,
    pub output: OutputCapture,
    cpu: Arc<GuestCpu>,
    /// Calls served, for warm instances' retirement.
    pub served: u32,
    /// Where its calls' CPU and memory are counted: the current call's meter.
    pub meter: Arc<CallMeter>,
    /// Its randomness and wall clock, set per call.
    entropy: CallEntropy,
    /// Whether making this instance loaded its snapshot first: where from, and how long.
    pub snapshot_load: Option<(super::SnapshotSource, std::time::Duration)>,
    /// Holds one of the engine's instance slots for as long as this instance lives.
    _slot: OwnedSemaphorePermit,
}

/// Whose instance it is: the tenant, and the package set its snapshot was built with (the
/// instance preopens it as the snapshot did).
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Its package set, if it has one.
    pub packages: Option<&'a PackageSet>,
}

impl Instance {
    /// Instantiates `pre` for a script of `owner` under `limits`.
    pub async fn new(
        pre: &InstancePre<HostState>,
        runtime: &PythonRuntime,
        scheduler: &Arc<CpuScheduler>,
        owner: Owner<'_>,
        limits: &Limits,
        script: Arc<str>,
        slot: OwnedSemaphorePermit,
    ) -> Result<Self, CallError> {
        let output = OutputCapture::new(limits.output_bytes);
        let response_limits = ResponseLimits {
            max_body_bytes: limits.response_body_bytes,
            ..Default::default()
        };
        let entropy = CallEntropy::new();
        let mut state = new_host_state(
            runtime,
            limits.memory_bytes,
            &output,
            response_limits,
            owner.packages.map(|p| p.dir.as_path()),
            &entropy,
        )
        .map_err(|e| CallError::host(e.to_string()))?;
        state.script = Some(script);
        let mut store = Store::new(pre.module().engine(), state);
        store.limiter(|state| &mut state.limiter);
        let cpu = GuestCpu::install(&mut store, scheduler.clone(), Arc::from(owner.tenant));
        let waiting = cpu.clone();
        store.data_mut().on_io_wait = Some(Arc::new(move || waiting.offer()));
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CallError::host(format!("instantiating the interpreter: {e:#}")))?;
        let func = |store: &mut Store<HostState>, name: &str| {
            instance
                .get_typed_func::<(), i32>(store, name)
                .map_err(|e| CallError::host(format!("runtime lacks export {name}: {e:#}")))
        };
        Ok(Instance {
            load: func(&mut store, "pq_load")?,
            handle: func(&mut store, "pq_handle")?,
            compile: func(&mut store, "pq_compile")?,
            store,
            output,
            cpu,
            served: 0,
            meter: Arc::default(),
            entropy,
            snapshot_load: None,
            _slot: slot,
        })
    }

    /// Starts a call's randomness and wall clock from `seed`.
    pub fn seed(&self, seed: &CallSeed) {
        self.entropy.begin(seed);
    }

    /// Gives the instance `turn` for its work, guest code and host side alike.
    pub fn hold(&self, turn: super::scheduler::Turn) {
        self.cpu.hold(turn);
    }

    /// Gives the turn back (before the instance waits in the warm pool).
    pub fn release_turn(&self) {
        self.cpu.release();
    }

    /// `pq_compile`: checks the script's syntax without running it.
    pub async fn compile(&mut self, limits: &Limits, deadline: Instant) -> Result<(), CallError> {
        let func = self.compile.clone();
        self.call(func, limits, deadline).await
    }

    /// `pq_load`: runs the script's module-level code and finds its handler.
    pub async fn load(&mut self, limits: &Limits, deadline: Instant) -> Result<(), CallError> {
        let func = self.load.clone();
        self.call(func, limits, deadline).await
    }

    /// `pq_handle`: runs the handler on the request already placed in the host state.
    pub async fn handle(&mut self, limits: &Limits, deadline: Instant) -> Result<(), CallError> {
        let func = self.handle.clone();
        self.served += 1;
        self.call(func, limits, deadline).await
    }

    async fn call(
        &mut self,
        func: TypedFunc<(), i32>,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<(), CallError> {
        self.cpu.arm(limits.cpu_time());
        // Relative to now: an instance that waited in the warm pool is far past its deadline,
        // and its first check would otherwise count as a tick.
        self.store.set_epoch_deadline(1);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let meter = self.meter.clone();
        let outcome =
            tokio::time::timeout(remaining, meter.timed(func.call_async(&mut self.store, ())))
                .await;
        let memory = self.store.data().limiter.peak_memory_bytes;
        self.meter.observe_memory(memory as u64);
        let kind = match outcome {
            Err(_elapsed) => CallErrorKind::WallLimit {
                limit_ms: limits.wall_ms,
            },
            Ok(Ok(driver_status::OK)) => return Ok(()),
            Ok(Ok(driver_status::REPORTED)) => self.reported_error(limits),
            Ok(Ok(code)) => CallErrorKind::Crashed(format!("the driver failed (code {code})")),
            Ok(Err(trap)) => self.classify_trap(trap, limits),
        };
        Err(CallError {
            kind,
            output: self.output.take(),
        })
    }

    fn reported_error(&mut self, limits: &Limits) -> CallErrorKind {
        let state = self.store.data_mut();
        let report = state.error_report.take().unwrap_or_default();
        // Once a growth was refused, whatever failed next (MemoryError, or the SystemError
        // CPython raises when it cannot allocate a frame) failed for want of memory.
        if state.limiter.memory_refused {
            return CallErrorKind::MemoryLimit {
                limit_bytes: limits.memory_bytes,
            };
        }
        match report.kind {
            ReportKind::Syntax => CallErrorKind::Syntax(Box::new(report)),
            ReportKind::Return => CallErrorKind::BadReturn(report.message),
            ReportKind::NoHandler => CallErrorKind::NoHandler(report.message),
            ReportKind::DbUnavailable => CallErrorKind::DatabaseUnavailable(report.message),
            // The guest says which status; only the two the SDK raises are taken.
            ReportKind::ClientError => CallErrorKind::ClientError {
                status: report.status.filter(|s| *s == 415).unwrap_or(400),
                message: report.message,
            },
            // Preload reports come only during a snapshot build; one here is an exception.
            ReportKind::Exception
            | ReportKind::Memory
            | ReportKind::Recursion
            | ReportKind::Exit
            | ReportKind::Preload => CallErrorKind::Exception(Box::new(report)),
        }
    }

    fn classify_trap(&mut self, error: wasmtime::Error, limits: &Limits) -> CallErrorKind {
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return CallErrorKind::Exited(exit.0);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallErrorKind::CpuLimit {
                limit_ms: limits.cpu_ms,
            },
            Some(Trap::StackOverflow) => CallErrorKind::StackOverflow,
            _ if self.store.data().limiter.memory_refused => CallErrorKind::MemoryLimit {
                limit_bytes: limits.memory_bytes,
            },
            Some(trap) => CallErrorKind::Crashed(format!("the interpreter trapped: {trap}")),
            None => CallErrorKind::Crashed(format!("{error:#}")),
        }
    }
}
