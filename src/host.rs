//! The host end of the guest ABI (guest-sdk/ABI.md): one [`HostState`] per store, and one
//! file per capability. Each capability reaches only its own slice of the state. Guest memory
//! is touched by [`abi`] (every `pq` call) and by [`files`] (WASI's own file calls, wrapped to
//! count descriptors), both bounds-checked. Nothing here knows about HTTP.

pub mod abi;
pub mod db;
pub mod egress;
pub mod error_report;
pub mod files;
pub mod log;
pub mod request;
pub mod response;
pub mod rows;
pub mod script;
pub mod secret;
pub mod state;

use std::sync::Arc;
use std::time::Instant;

use wasmtime_wasi::p1::WasiP1Ctx;

pub use crate::db::DatabaseCapability;
pub use abi::{AbiError, Fault};
pub use error_report::GuestErrorReport;
pub use log::OutputCapture;
pub use request::GuestRequest;
pub use response::{GuestResponse, ResponseLimits};
pub use secret::{SecretError, SecretSource};
pub use state::StateStore;

/// What a call may reach beyond its request. Each is `None` where the sandbox does not offer
/// it (e.g. under `pubfn run`), and the guest gets `PQ_E_UNAVAILABLE`.
#[derive(Clone, Default)]
pub struct Capabilities {
    /// The tenant's databases.
    pub db: Option<Arc<dyn DatabaseCapability>>,
    /// The tenant's secrets.
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// The endpoint's state.
    pub state: Option<Arc<dyn StateStore>>,
    /// Outbound HTTP within the tenant's allow-list.
    pub egress: Option<Arc<dyn crate::egress::EgressCapability>>,
}

/// Everything a store owns on the host side while a guest runs.
pub struct HostState {
    /// WASI preview 1: the read-only stdlib preopen, stdio capture, clocks and randomness.
    pub wasi: WasiP1Ctx,
    /// The request being handled (absent while only compiling or loading).
    pub request: Option<Arc<GuestRequest>>,
    /// The handler script's source.
    pub script: Option<Arc<str>>,
    /// The script's code object: cached from an earlier instance, or offered by this one.
    pub code: script::ScriptCode,
    /// What the guest answered.
    pub response: response::ResponseSlot,
    /// Why the guest says it failed, if it did.
    pub error_report: Option<GuestErrorReport>,
    /// The tenant's databases, secrets and state, for the current call only.
    pub capabilities: Capabilities,
    /// When the current call must be done by; host calls waiting on I/O stop there.
    pub deadline: Option<Instant>,
    /// The result of the last host call, waiting for `take_result`.
    pub pending_result: Option<Vec<u8>>,
    /// Fetch results kept on the host for this call.
    pub kept_rows: rows::KeptRows,
    /// Memory and table caps, and whether the guest ran into them.
    pub limiter: GuestLimiter,
    /// Files the guest holds open, within its budget.
    pub open_files: files::OpenFiles,
    /// Called as a host call starts waiting on I/O (its database, its state), so that the
    /// sandbox can give the guest's core to another guest meanwhile.
    pub on_io_wait: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// Adds the host's imports (`pq`) and the counted WASI file calls to `linker`, which must
/// already hold WASI.
pub fn add_to_linker(linker: &mut wasmtime::Linker<HostState>) -> wasmtime::Result<()> {
    abi::add_to_linker(linker)?;
    files::add_to_linker(linker)
}

/// A [`wasmtime::ResourceLimiter`] that remembers whether a request was refused, so a
/// `MemoryError` raised after a refusal is reported as the memory limit it is.
#[derive(Debug, Clone)]
pub struct GuestLimiter {
    /// Largest linear memory allowed, in bytes.
    pub max_memory_bytes: usize,
    /// Largest table allowed, in elements.
    pub max_table_elements: usize,
    /// Set when a memory growth was refused.
    pub memory_refused: bool,
    /// The largest linear memory granted so far, in bytes.
    pub peak_memory_bytes: usize,
}

impl GuestLimiter {
    /// A limiter with the given memory cap and a table cap generous enough for CPython.
    pub fn new(max_memory_bytes: usize) -> Self {
        GuestLimiter {
            max_memory_bytes,
            max_table_elements: 100_000,
            memory_refused: false,
            peak_memory_bytes: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        // Also called for the memory's initial size when an instance is made.
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

impl HostState {
    /// A state with no request, script or response yet.
    pub fn new(wasi: WasiP1Ctx, limiter: GuestLimiter, response_limits: ResponseLimits) -> Self {
        HostState {
            wasi,
            request: None,
            script: None,
            code: script::ScriptCode::default(),
            response: response::ResponseSlot::new(response_limits),
            error_report: None,
            capabilities: Capabilities::default(),
            deadline: None,
            pending_result: None,
            kept_rows: rows::KeptRows::default(),
            limiter,
            open_files: files::OpenFiles::default(),
            on_io_wait: None,
        }
    }

    /// Clears everything one call left behind, so a warm instance starts its next call clean.
    pub fn reset_call(&mut self) {
        self.request = None;
        self.capabilities = Capabilities::default();
        self.deadline = None;
        self.response.clear();
        self.error_report = None;
        self.pending_result = None;
        self.kept_rows = rows::KeptRows::default();
        self.limiter.memory_refused = false;
    }
}
