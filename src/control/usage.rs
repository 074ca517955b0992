//! Metering's ledger: every call's usage added to its endpoint's totals for the hour, in
//! memory, and written to `pubfn.usage_hourly` in one batch every [`FLUSH_EVERY`] (and when
//! asked, before a usage query, and at shutdown). Per-call writes would cost PostgreSQL what
//! logging every call did (see `logs.rs`); the hourly rows are sums, so nodes add to them
//! independently. A batch that fails to write is merged back and tried again: nothing is lost
//! short of the process dying between flushes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::model::Usage;
use super::{ControlError, Store};

/// How often pending totals are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Which row a call adds to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HourKey {
    /// The tenant.
    pub tenant: String,
    /// The endpoint.
    pub endpoint: String,
    /// The hour's start, in seconds since the Unix epoch.
    pub hour: i64,
}

/// Sums over calls (the peak is the largest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Calls.
    pub calls: u64,
    /// Calls answered with a status of 500 or more.
    pub errors: u64,
    /// CPU time, in microseconds.
    pub cpu_us: u64,
    /// Time in database calls, in microseconds.
    pub db_us: u64,
    /// Database calls.
    pub db_round_trips: u64,
    /// Time waiting on outbound HTTP, in microseconds.
    pub egress_us: u64,
    /// Outbound HTTP response bytes received.
    pub egress_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// The largest peak memory of a call, in bytes.
    pub peak_memory_bytes: u64,
}

impl Totals {
    /// Adds one call.
    pub fn add_call(&mut self, status: u16, usage: &Usage) {
        self.add(&Totals {
            calls: 1,
            errors: u64::from(status >= 500),
            cpu_us: usage.cpu_us,
            db_us: usage.db_us,
            db_round_trips: usage.db_round_trips,
            egress_us: usage.egress_us,
            egress_bytes: usage.egress_bytes,
            response_bytes: usage.response_bytes,
            peak_memory_bytes: usage.peak_memory_bytes,
        });
    }

    /// Adds `other`'s sums (and keeps the larger peak).
    pub fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.cpu_us += other.cpu_us;
        self.db_us += other.db_us;
        self.db_round_trips += other.db_round_trips;
        self.egress_us += other.egress_us;
        self.egress_bytes += other.egress_bytes;
        self.response_bytes += other.response_bytes;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
    }
}

/// The node's pending totals and their writer.
#[derive(Clone)]
pub struct UsageLedger {
    store: Store,
    pending: Arc<Mutex<HashMap<HourKey, Totals>>>,
}

impl UsageLedger {
    /// A ledger writing to `store`, with its periodic writer started.
    pub fn start(store: Store) -> Self {
        let ledger = UsageLedger {
            store,
            pending: Arc::default(),
        };
        let writer = ledger.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                if let Err(e) = writer.flush().await {
                    tracing::warn!("writing usage totals: {}", crate::app::describe(&e));
                }
            }
        });
        ledger
    }

    /// Adds one call of `tenant`'s `endpoint`, answered with `status`, to this hour's totals.
    pub fn record(&self, tenant: &str, endpoint: &str, status: u16, usage: &Usage) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let key = HourKey {
            tenant: tenant.to_string(),
            endpoint: endpoint.to_string(),
            hour: now - now.rem_euclid(3600),
        };
        self.lock().entry(key).or_default().add_call(status, usage);
    }

    /// Writes the pending totals now; on failure they stay pending.
    pub async fn flush(&self) -> Result<(), ControlError> {
        let batch: Vec<(HourKey, Totals)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        if let Err(e) = self.store.add_usage(&batch).await {
            let mut pending = self.lock();
            for (key, totals) in batch {
                pending.entry(key).or_default().add(&totals);
            }
            return Err(e);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HourKey, Totals>> {
        // A panic while holding it left plain sums behind: still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_calls_and_keep_the_largest_peak() {
        let mut totals = Totals::default();
        let call = |cpu_us, peak_memory_bytes| Usage {
            cpu_us,
            peak_memory_bytes,
            db_us: 10,
            db_round_trips: 2,
            egress_us: 5,
            egress_bytes: 100,
            response_bytes: 7,
        };
        totals.add_call(200, &call(1_000, 64 << 20));
        totals.add_call(504, &call(500_000, 32 << 20));
        assert_eq!(
            totals,
            Totals {
                calls: 2,
                errors: 1,
                cpu_us: 501_000,
                db_us: 20,
                db_round_trips: 4,
                egress_us: 10,
                egress_bytes: 200,
                response_bytes: 14,
                peak_memory_bytes: 64 << 20,
            }
        );
    }
}
