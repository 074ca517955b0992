//! Per-call resource limits and the CPU meter that enforces the CPU one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{Store, UpdateDeadline};

use super::engine::EPOCH_TICK;
use crate::host::HostState;

/// Hard limits on one call into a guest. Every one is configurable per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Time the guest may spend running wasm, in milliseconds (counted in epoch ticks while
    /// guest code runs; time blocked in host calls such as `sleep` does not count).
    pub cpu_ms: u64,
    /// Time the whole call may take, in milliseconds, sleeping and host calls included.
    pub wall_ms: u64,
    /// Captured stdout + stderr kept, in bytes; the rest is dropped and marked.
    pub output_bytes: usize,
    /// Largest response body, in bytes.
    pub response_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            cpu_ms: 5_000,
            wall_ms: 30_000,
            output_bytes: 64 << 10,
            response_body_bytes: 8 << 20,
        }
    }
}

impl Limits {
    /// The CPU limit.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }

    /// The wall-clock limit.
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}

/// Counts the epoch ticks a store's guest code runs through, and interrupts it past a budget.
///
/// The deadline is always one tick ahead, so the callback runs once per tick in which guest
/// code was executing. A guest blocked in a host call (a sleep, a database query) is not
/// executing and is not charged, however many ticks pass meanwhile.
#[derive(Debug, Clone, Default)]
pub struct CpuMeter {
    ticks: Arc<AtomicU64>,
}

impl CpuMeter {
    /// Arms `store` with a fresh budget of `limit`.
    pub fn arm(&self, store: &mut Store<HostState>, limit: Duration) {
        self.ticks.store(0, Ordering::Relaxed);
        let budget = (limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let ticks = self.ticks.clone();
        store.epoch_deadline_callback(move |_| {
            if ticks.fetch_add(1, Ordering::Relaxed) + 1 >= budget {
                return Ok(UpdateDeadline::Interrupt);
            }
            // Yielding once a tick keeps a CPU-bound guest from holding an executor thread.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
    }

    /// Guest CPU time charged since the last [`CpuMeter::arm`].
    pub fn used(&self) -> Duration {
        EPOCH_TICK * self.ticks.load(Ordering::Relaxed) as u32
    }
}
