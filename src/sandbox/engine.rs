//! The one wasmtime [`Engine`] of the process, and the epoch ticker that drives deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::SandboxError;
use super::function_cache::FunctionCache;

/// How often the epoch advances. Deadlines are counted in these ticks, so this is the
/// granularity of the CPU limit, and a busy guest yields to the executor once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Wasm stack for CPython: its recursion runs deep in C before Python's own limit stops it.
const MAX_WASM_STACK: usize = 8 << 20;

/// The default of [`EngineSettings::keep_resident_bytes`]. A strict hello dirties ~2 MiB
/// (tests/sandbox_memory_reset.rs faults 9 times per call at 2 MiB, 0.2 at 4), a fetch of 100
/// rows more; 8 MiB keeps both.
pub const DEFAULT_KEEP_RESIDENT_BYTES: usize = 8 << 20;

/// The default of [`EngineSettings::idle_slots`] (wasmtime's own default).
pub const DEFAULT_IDLE_SLOTS: u32 = 100;

/// Settings that shape the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Instances alive at once across all tenants (pool slots).
    pub max_instances: u32,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory_bytes: usize,
    /// Dirty memory per pool slot restored in place, rather than released, when an instance
    /// ends. A page once kept stays private to its slot and is copied back at every later
    /// reset, so this bounds both a slot's resident memory and the copy each strict request
    /// pays.
    pub keep_resident_bytes: usize,
    /// Unused pool slots that keep their memory (and their last module) for reuse. A slot
    /// once used keeps up to `keep_resident_bytes`, so the sandbox's instance memory stays
    /// below about (peak concurrent instances + this) × `keep_resident_bytes`.
    pub idle_slots: u32,
    /// Compiled functions kept for the next snapshot module.
    pub functions: Arc<FunctionCache>,
    /// Name JIT code in `/tmp/perf-<pid>.map`, for `perf` (`PUBFN_GUEST_PERFMAP`).
    pub perf_map: bool,
}

/// Where wasmtime's own cache of compiled modules used to be (up to 32 GiB); removed at start.
pub const OLD_COMPILED_CACHE_DIR: &str = "wasmtime";

/// Builds the engine: pooling allocator, copy-on-write memory images, epoch interruption,
/// async host calls, and the compiled functions snapshots share ([`FunctionCache`]). Also
/// says whether the kernel has `PAGEMAP_SCAN` (Linux 6.7+), without which no dirty page is
/// kept resident between instances (each fresh instance faults its pages in again).
pub fn build(settings: &EngineSettings) -> Result<(Engine, bool), SandboxError> {
    match build_with(settings, true) {
        Ok(engine) => Ok((engine, true)),
        Err(e) => {
            tracing::info!("PAGEMAP_SCAN unavailable ({e}); fresh instances will fault pages in");
            Ok((build_with(settings, false)?, false))
        }
    }
}

fn build_with(settings: &EngineSettings, pagemap: bool) -> Result<Engine, SandboxError> {
    let mut pool = PoolingAllocationConfig::new();
    // One slot per live instance; a request beyond this waits for a slot rather than
    // failing inside wasmtime (the caller bounds concurrency below this number).
    pool.total_core_instances(settings.max_instances);
    pool.total_memories(settings.max_instances);
    pool.total_tables(settings.max_instances);
    pool.total_stacks(settings.max_instances);
    // Beyond this many idle slots, a new instance reuses an idle slot (and its resident
    // pages) rather than dirtying a never-used one.
    pool.max_unused_warm_slots(settings.idle_slots.min(settings.max_instances));
    // The slot is sized to the memory limit, so a guest can never map more than that.
    pool.max_memory_size(settings.max_memory_bytes);
    // A fresh instance maps the snapshot copy-on-write, and each page it writes costs a
    // fault plus a 4 KiB copy (a strict request dirties a few hundred). With PAGEMAP_SCAN
    // (Linux ≥ 6.7) wasmtime finds exactly the dirtied pages when an instance ends and copies
    // the image back into them, up to this many bytes per slot, so the next instance of the
    // same snapshot in that slot (slots prefer their last module) starts without faulting
    // them in again. (Upstream stopped at 32 dirty regions, which CPython always exceeds: the
    // patched copy in third_party/ scans them all; tests/sandbox_memory_reset.rs checks it.)
    // Without the ioctl wasmtime would memset this many low bytes instead,
    // which costs more than the faults it saves, so then only 1 MiB is kept.
    if pagemap {
        pool.pagemap_scan(wasmtime::Enabled::Yes);
        pool.linear_memory_keep_resident(settings.keep_resident_bytes);
    } else {
        pool.pagemap_scan(wasmtime::Enabled::No);
        pool.linear_memory_keep_resident(settings.keep_resident_bytes.min(1 << 20));
    }
    pool.table_keep_resident(1 << 20);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Instances start from the snapshot's memory image by mapping it copy-on-write,
        // which is what makes a fresh instance per request cost microseconds.
        .memory_init_cow(true)
        // Deadlines without fuel's per-instruction cost: the guest checks an epoch counter.
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        // Host calls run on a separate fiber stack that must hold the whole wasm stack plus
        // the host functions' own frames.
        .async_stack_size(MAX_WASM_STACK + (2 << 20))
        .cranelift_opt_level(OptLevel::Speed);
    // Every tenant's snapshot module is compiled code of its own (~22 MiB resident). A trap is
    // reported by its kind (instance.rs), never by wasm offset, and nothing unwinds through
    // guest frames with the system unwinder (perf walks frame pointers): the address map and
    // the .eh_frame would be 1.9 MiB per tenant that nothing reads.
    config.generate_address_map(false).native_unwind_info(false);

    // For profiling guests with `perf`: JIT code gets names in /tmp/perf-<pid>.map (function
    // indices of the stripped interpreter; see README, "Profiling"). Off unless asked for.
    if settings.perf_map {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }

    // No wasmtime module cache: pubfn keeps each compiled snapshot (and the instrumented
    // interpreter every build starts from) as a file of its own and maps it (compiled.rs),
    // which loads in 0.7-2.4 ms where a hit in wasmtime's cache took 57 ms (hash, decompress,
    // copy), and which costs no zstd compression when a new tenant's snapshot compiles.
    config.cache(None);
    // Every tenant's snapshot module holds the same interpreter functions: a new tenant's
    // reuses the first one's from disk instead of compiling them again (a new tenant's first
    // 200 went from 2.1 s to 0.75 s; resident memory per tenant did not change).
    config
        .enable_incremental_compilation(settings.functions.clone())
        .map_err(|e| SandboxError::engine("incremental compilation", e))?;

    Engine::new(&config).map_err(|e| SandboxError::engine("configuration", e))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread; `on_tick` runs after each advance.
    pub fn start(engine: &Engine, on_tick: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("pubfn-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => {
                            engine.increment_epoch();
                            on_tick();
                        }
                        None => break,
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
