//! What one call used of the sandbox, read by the application layer for metering whatever
//! the call's outcome (a call stopped by its CPU limit used its CPU too).
//!
//! CPU is the executor thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`) while it polls the
//! call: guest code and the host's side of its calls, wherever the call is polled, and nothing
//! while it waits (a sleep, a query, an outbound request) or while the OS runs something else.
//! The CPU limit's meter (`cpu.rs`) charges guest code only, since it lends the turn during
//! every host call; billing by it missed most of a loop that reads the clock (151 of 350 ms in
//! tests/serve_metering.rs), so metering does not.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Filled in by the sandbox while a call runs: its CPU time (the script's module-level code
/// and the handler, host calls' work included) and its instance's peak linear memory.
#[derive(Debug, Default)]
pub struct CallMeter {
    cpu_nanos: AtomicU64,
    peak_memory_bytes: AtomicU64,
}

impl CallMeter {
    /// CPU time so far.
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    /// The largest the instance's linear memory was, in bytes (a warm instance's includes
    /// what earlier calls left; wasm memory never shrinks).
    pub fn peak_memory_bytes(&self) -> u64 {
        self.peak_memory_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add_cpu(&self, used: Duration) {
        let nanos = u64::try_from(used.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn observe_memory(&self, bytes: u64) {
        self.peak_memory_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Runs `future`, adding the CPU time of every poll of it to this meter.
    pub(crate) async fn timed<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let start = thread_cpu_time();
            let poll = future.as_mut().poll(cx);
            self.add_cpu(thread_cpu_time().saturating_sub(start));
            poll
        })
        .await
    }
}

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_work_and_not_waiting() {
        let meter = CallMeter::default();
        meter
            .timed(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_millis(50) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
            .await;
        // 50 ms of spinning on this thread, never the 200 ms asleep (preemption by the OS can
        // only take from the spinning).
        assert!(
            meter.cpu() <= Duration::from_millis(150),
            "{:?}",
            meter.cpu()
        );
        assert!(meter.cpu() >= Duration::from_millis(5), "{:?}", meter.cpu());
    }
}
