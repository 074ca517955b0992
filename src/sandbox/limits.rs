//! Per-call resource limits (the CPU one is metered in `cpu.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Hard limits on one call into a guest. Every one is configurable per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Time the guest may spend running wasm, in milliseconds (time holding a turn at a core;
    /// waiting for one, or blocked in host calls such as `sleep`, does not count).
    pub cpu_ms: u64,
    /// Time the whole call may take, in milliseconds, sleeping and host calls included.
    pub wall_ms: u64,
    /// Captured stdout + stderr kept, in bytes; the rest is dropped and marked.
    pub output_bytes: usize,
    /// Largest response body, in bytes.
    pub response_body_bytes: usize,
    /// Largest body of one outbound HTTP response the handler receives, in bytes.
    pub egress_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            cpu_ms: 5_000,
            wall_ms: 30_000,
            output_bytes: 64 << 10,
            response_body_bytes: 8 << 20,
            egress_response_bytes: 8 << 20,
        }
    }
}

impl Limits {
    /// Smallest memory limit: below it the interpreter cannot start.
    pub const MIN_MEMORY_BYTES: usize = 32 << 20;
    /// Largest CPU or wall-clock limit, in milliseconds.
    pub const MAX_TIME_MS: u64 = 600_000;
    /// Largest output capture, in bytes.
    pub const MAX_OUTPUT_BYTES: usize = 16 << 20;
    /// Largest response body limit, in bytes (the largest host-call argument).
    pub const MAX_RESPONSE_BODY_BYTES: usize = 64 << 20;

    /// Refuses limits outside what the sandbox can honour; `max_memory_bytes` is its ceiling.
    pub fn validate(&self, max_memory_bytes: usize) -> Result<(), String> {
        let check = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("limits.{name} must be {min} to {max}, not {value}"))
            }
        };
        check(
            "memory_bytes",
            self.memory_bytes as u64,
            Self::MIN_MEMORY_BYTES as u64,
            max_memory_bytes as u64,
        )?;
        check("cpu_ms", self.cpu_ms, 1, Self::MAX_TIME_MS)?;
        check("wall_ms", self.wall_ms, 1, Self::MAX_TIME_MS)?;
        check(
            "output_bytes",
            self.output_bytes as u64,
            0,
            Self::MAX_OUTPUT_BYTES as u64,
        )?;
        check(
            "response_body_bytes",
            self.response_body_bytes as u64,
            0,
            Self::MAX_RESPONSE_BODY_BYTES as u64,
        )?;
        // The body is copied into guest memory whole: no more than the largest argument.
        check(
            "egress_response_bytes",
            self.egress_response_bytes as u64,
            0,
            Self::MAX_RESPONSE_BODY_BYTES as u64,
        )
    }

    /// The limits of a deploy-time compile check of a script that will run under `self`.
    ///
    /// The time limits are at least the defaults: the endpoint's own are a request's budget,
    /// and a compile is a different job (a debug build on a loaded 2-core CI machine took over
    /// 3 s of wall time to instantiate and compile a one-line script under a 3 s `wall_ms`,
    /// refusing a good script). Memory stays the endpoint's: a script that cannot even compile
    /// within it could never run.
    pub fn for_compile_check(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            cpu_ms: self.cpu_ms.max(defaults.cpu_ms),
            wall_ms: self.wall_ms.max(defaults.wall_ms),
            ..*self
        }
    }

    /// The CPU limit.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }

    /// The wall-clock limit.
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    #[test]
    fn a_compile_check_gets_at_least_the_default_time_and_the_endpoints_memory() {
        let tight = Limits {
            cpu_ms: 10,
            wall_ms: 3_000,
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        let check = tight.for_compile_check();
        assert_eq!(check.cpu_ms, Limits::default().cpu_ms);
        assert_eq!(check.wall_ms, Limits::default().wall_ms);
        assert_eq!(check.memory_bytes, 64 << 20);

        let generous = Limits {
            cpu_ms: 60_000,
            wall_ms: 120_000,
            ..Limits::default()
        };
        assert_eq!(generous.for_compile_check(), generous);
    }
}
