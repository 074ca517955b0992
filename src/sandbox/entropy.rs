//! What a call draws from the outside world without a host call: randomness (WASI's
//! `random_get`, behind `os.urandom`, `random`, `uuid`, `secrets`) and the wall clock (`time`,
//! `datetime`). Both are set per call from a [`CallSeed`], so that a replay can give the guest
//! the same bytes and the same time as the call it reproduces (app/replay).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_wasi::SeedableRng;
use rand_wasi::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A call's randomness and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSeed {
    /// Seed of the call's generator (ChaCha12, cryptographically secure: the guest's
    /// `os.urandom` is drawn from it).
    #[serde(with = "hex_seed")]
    pub random: [u8; 32],
    /// The wall-clock time at the start of the call, in nanoseconds since the Unix epoch.
    pub wall_clock_unix_ns: u64,
}

impl CallSeed {
    /// A seed from the operating system's generator, starting now.
    pub fn fresh() -> Self {
        let mut random = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        CallSeed {
            random,
            wall_clock_unix_ns: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for CallSeed {
    fn default() -> Self {
        CallSeed::fresh()
    }
}

mod hex_seed {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(seed: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(seed))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(D::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("a seed is 32 bytes (64 hex digits)"))
    }
}

/// One instance's generator and clock, re-seeded at the start of each of its calls.
#[derive(Clone)]
pub(crate) struct CallEntropy(Arc<Mutex<EntropyState>>);

struct EntropyState {
    rng: StdRng,
    /// The wall-clock time the current call started at, and when that was on this host.
    clock_base: (Duration, Instant),
}

impl CallEntropy {
    /// Seeded from the operating system until the first call sets its own seed.
    pub fn new() -> Self {
        let seed = CallSeed::fresh();
        CallEntropy(Arc::new(Mutex::new(EntropyState {
            rng: StdRng::from_seed(seed.random),
            clock_base: (
                Duration::from_nanos(seed.wall_clock_unix_ns),
                Instant::now(),
            ),
        })))
    }

    /// Starts a call: its generator from `seed`, its clock at `seed`'s time from now on.
    pub fn begin(&self, seed: &CallSeed) {
        let mut state = self.lock();
        state.rng = StdRng::from_seed(seed.random);
        state.clock_base = (
            Duration::from_nanos(seed.wall_clock_unix_ns),
            Instant::now(),
        );
    }

    /// The generator to give WASI.
    pub fn random(&self) -> CallRandom {
        CallRandom(self.clone())
    }

    /// The wall clock to give WASI.
    pub fn clock(&self) -> CallClock {
        CallClock(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EntropyState> {
        // The state is plain data, whole after any panic: a poisoned lock is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// WASI's secure generator for one instance (see [`CallEntropy`]).
pub(crate) struct CallRandom(CallEntropy);

impl rand_wasi::TryRng for CallRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0.lock().rng.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0.lock().rng.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.lock().rng.try_fill_bytes(dst)
    }
}

/// WASI's wall clock for one instance: the call's start time plus the time elapsed since on
/// this host's monotonic clock (for a live call, the real time to within a clock step).
pub(crate) struct CallClock(CallEntropy);

impl wasmtime_wasi::HostWallClock for CallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let (base, at) = self.0.lock().clock_base;
        base + at.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_wasi::TryRng;
    use wasmtime_wasi::HostWallClock;

    fn bytes(random: &mut CallRandom) -> [u8; 64] {
        let mut out = [0u8; 64];
        random.try_fill_bytes(&mut out).unwrap();
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_time_and_a_fresh_one_does_not() {
        let seed = CallSeed {
            random: [7; 32],
            wall_clock_unix_ns: 1_700_000_000_000_000_000,
        };
        let (one, two) = (CallEntropy::new(), CallEntropy::new());
        one.begin(&seed);
        two.begin(&seed);
        assert_eq!(bytes(&mut one.random()), bytes(&mut two.random()));
        let now = one.clock().now();
        assert!(now >= Duration::from_nanos(seed.wall_clock_unix_ns));
        assert!(now < Duration::from_nanos(seed.wall_clock_unix_ns) + Duration::from_secs(5));

        let fresh = CallEntropy::new();
        fresh.begin(&CallSeed::fresh());
        assert_ne!(bytes(&mut fresh.random()), bytes(&mut one.random()));
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let clock = fresh.clock().now();
        assert!(
            clock.abs_diff(real) < Duration::from_secs(5),
            "{clock:?} vs {real:?}"
        );
    }

    #[test]
    fn a_seed_survives_its_json_and_a_short_one_is_refused() {
        let seed = CallSeed::fresh();
        let json = serde_json::to_string(&seed).unwrap();
        assert_eq!(serde_json::from_str::<CallSeed>(&json).unwrap(), seed);
        let short = r#"{"random":"abcd","wall_clock_unix_ns":1}"#;
        assert!(serde_json::from_str::<CallSeed>(short).is_err());
    }
}
