//! The node's memory budget: what idle tenants hold in memory (snapshot modules, warm
//! instances, cached code, database pools) is released, least recently used first, when the
//! process's resident memory reaches the budget; if that is not enough, so is what tenants
//! called moments ago hold, unless they have a call in flight. An evicted tenant's next
//! request loads its compiled snapshot from disk again
//! (`pubfn_snapshot_loads_total{source="disk"}`).
//!
//! The budget is held against what the kernel says the process holds (`/proc/self/statm`),
//! not against estimates: a snapshot module's share of memory depends on how many of its pages
//! its instances touched, which no estimate here would know.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::App;

/// Eviction starts above this share of the budget, so that a burst of loads rarely crosses
/// the budget itself ...
const HIGH_WATER: f64 = 0.90;
/// ... and goes on until resident memory is below this share, so it does not run for every
/// new tenant.
const LOW_WATER: f64 = 0.80;
/// How often resident memory is read when nothing was loaded (a load wakes the check at once).
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A tenant used this recently is evicted only when releasing every idle one was not
/// enough: its next request is likely already coming.
const MIN_IDLE: Duration = Duration::from_millis(500);

/// The budget and what keeping it did.
pub struct MemoryBudget {
    /// The budget, in bytes.
    limit: u64,
    /// When each tenant was last called.
    last_used: std::sync::Mutex<HashMap<String, Instant>>,
    /// Tenants evicted so far.
    evictions: AtomicU64,
    /// The highest resident memory seen, in bytes.
    peak: AtomicU64,
}

/// What `/metrics` shows of the budget.
#[derive(Debug, Clone, Copy)]
pub struct BudgetStats {
    /// The budget, in bytes.
    pub limit_bytes: u64,
    /// Resident memory now, in bytes.
    pub resident_bytes: u64,
    /// The highest resident memory seen by the budget's checks, in bytes.
    pub peak_bytes: u64,
    /// Tenants evicted so far.
    pub evictions: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            limit,
            last_used: Default::default(),
            evictions: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Records a call of `tenant`.
    pub fn touch(&self, tenant: &str) {
        let mut used = self.lock();
        match used.get_mut(tenant) {
            Some(at) => *at = Instant::now(),
            None => {
                used.insert(tenant.to_string(), Instant::now());
            }
        }
    }

    /// Forgets `tenant` (deleted).
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    /// Tenants idle for at least [`MIN_IDLE`], least recently used first.
    fn idle_tenants(&self) -> Vec<String> {
        let now = Instant::now();
        self.used_before(|at| now.duration_since(at) >= MIN_IDLE)
    }

    /// Every tenant called since it was last released, least recently used first.
    fn least_recently_used(&self) -> Vec<String> {
        self.used_before(|_| true)
    }

    fn used_before(&self, keep: impl Fn(Instant) -> bool) -> Vec<String> {
        let mut tenants: Vec<(Instant, String)> = self
            .lock()
            .iter()
            .filter(|(_, at)| keep(**at))
            .map(|(tenant, at)| (*at, tenant.clone()))
            .collect();
        tenants.sort();
        tenants.into_iter().map(|(_, tenant)| tenant).collect()
    }

    fn observe(&self) -> u64 {
        let resident = resident_bytes();
        self.peak.fetch_max(resident, Ordering::Relaxed);
        resident
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl App {
    /// What the memory budget is and did.
    pub fn budget_stats(&self) -> BudgetStats {
        let budget = &self.budget;
        BudgetStats {
            limit_bytes: budget.limit,
            resident_bytes: budget.observe(),
            peak_bytes: budget.peak.load(Ordering::Relaxed),
            evictions: budget.evictions.load(Ordering::Relaxed),
        }
    }

    /// Keeps the process within its memory budget until the process ends: checks resident
    /// memory after every snapshot load and every [`CHECK_EVERY`], and releases idle tenants,
    /// least recently used first, from [`HIGH_WATER`] down to [`LOW_WATER`] of the budget.
    pub async fn keep_to_budget(self: Arc<Self>) {
        let loaded = self.sandbox.snapshot_loaded_signal();
        loop {
            tokio::select! {
                _ = loaded.notified() => {}
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            self.release_to_budget().await;
        }
    }

    /// One check: releases idle tenants until resident memory is below the low-water mark,
    /// or no idle tenant holds anything more.
    pub async fn release_to_budget(&self) {
        let budget = &self.budget;
        let limit = budget.limit as f64;
        if (budget.observe() as f64) < limit * HIGH_WATER {
            return;
        }
        // Tenants whose snapshots were loaded without a call (a new tenant's build, a deploy's
        // check) come first: they have no last use at all.
        let never_called: Vec<String> = {
            let used = budget.lock();
            self.sandbox
                .residency()
                .into_iter()
                .map(|r| r.tenant)
                .filter(|tenant| !used.contains_key(tenant))
                .collect()
        };
        let first: Vec<String> = never_called
            .into_iter()
            .chain(budget.idle_tenants())
            .collect();
        if self.release_in_order(first).await {
            return;
        }
        // Still at the high-water mark with every idle tenant released: the tenants holding
        // memory were all called within MIN_IDLE (bench h, 500 tenants at ~230 calls/s: ~115
        // of them at any moment, 3.9 GiB under a 1 GiB budget). The budget is the operator's
        // limit and a reload maps a file (under 3 ms), so recency yields: the least recently
        // used tenants without a call in flight go too.
        if (budget.observe() as f64) >= limit * HIGH_WATER {
            self.release_in_order(budget.least_recently_used()).await;
        }
    }

    /// Releases `tenants` in order, skipping those with a call in flight, until resident
    /// memory is below the low-water mark (then `true`) or the list ends.
    async fn release_in_order(&self, tenants: Vec<String>) -> bool {
        let budget = &self.budget;
        let low_water = budget.limit as f64 * LOW_WATER;
        for tenant in tenants {
            if self.is_busy(&tenant) {
                continue;
            }
            self.sandbox.release_tenant(&tenant);
            self.pools.forget_tenant(&tenant);
            budget.lock().remove(&tenant);
            budget.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(tenant, "released under the memory budget");
            if (budget.observe() as f64) < low_water {
                return true;
            }
            // Releasing a tenant unmaps its module at once; yield so requests keep flowing
            // while a long list is worked through.
            tokio::task::yield_now().await;
        }
        false
    }

    /// Whether `tenant` has a call in flight.
    fn is_busy(&self, tenant: &str) -> bool {
        self.in_flight
            .get(tenant)
            .is_some_and(|entry| entry.1.available_permits() < entry.0)
    }
}

/// The process's resident memory in bytes, from `/proc/self/statm` (0 where there is none).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

/// The default budget: half of the memory this process may use (the machine's `MemTotal`,
/// or its cgroup's `memory.max` when that is lower, as in a container with a memory limit),
/// leaving the rest to PostgreSQL, the page cache and the kernel; 4 GiB where neither can be
/// read.
pub fn default_budget_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024);
    let available = match (total, cgroup_memory_max()) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    };
    available.map_or(4 << 30, |bytes| bytes / 2)
}

/// The memory limit of this process's cgroup, if it has one: v2's `memory.max`, else v1's
/// `memory.limit_in_bytes` (whose "none" is a huge number, which the caller's `min` with
/// `MemTotal` ignores).
fn cgroup_memory_max() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |file: std::path::PathBuf| parse_memory_max(&std::fs::read_to_string(file).ok()?);
    let root = std::path::Path::new("/sys/fs/cgroup");
    let v2 = membership.lines().find_map(|line| line.strip_prefix("0::"));
    let v1 = membership
        .lines()
        .find_map(|line| line.split_once(":memory:").map(|(_, path)| path));
    v2.and_then(|path| read(root.join(path.trim_start_matches('/')).join("memory.max")))
        .or_else(|| {
            v1.and_then(|path| {
                let dir = root.join("memory").join(path.trim_start_matches('/'));
                read(dir.join("memory.limit_in_bytes"))
                    // Inside a container the cgroup's own directory is mounted as the root.
                    .or_else(|| read(root.join("memory/memory.limit_in_bytes")))
            })
        })
}

/// `memory.max`'s text: a number of bytes, or `max` for none.
fn parse_memory_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Parses a size: `512MiB`, `2GiB`, `1.5G`, `800M`, or a number of bytes (at least 1 MiB:
/// a bare `2048` is refused, since it is almost surely meant in MiB).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512MiB, 2GiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use MiB or GiB)"
            ));
        }
    };
    let bytes = (number * scale as f64) as u64;
    if bytes < 1 << 20 {
        return Err(format!(
            "{text:?} is under 1 MiB; say the unit, e.g. {number}MiB"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_need_their_unit_unless_they_are_bytes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("1073741824").unwrap(), 1 << 30);
        assert!(parse_size("2048").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn the_least_recently_used_idle_tenant_comes_first() {
        let budget = MemoryBudget::new(1 << 30);
        budget.touch("old");
        std::thread::sleep(Duration::from_millis(5));
        budget.touch("new");
        // Neither is idle long enough yet.
        assert!(budget.idle_tenants().is_empty());
        let past = Instant::now() - MIN_IDLE * 2;
        budget
            .lock()
            .insert("old".into(), past - Duration::from_secs(1));
        budget.lock().insert("new".into(), past);
        assert_eq!(budget.idle_tenants(), ["old", "new"]);
        assert!(resident_bytes() > 0);
        assert!(default_budget_bytes() > 0);
    }

    #[test]
    fn a_cgroup_limit_is_read_and_max_means_none() {
        assert_eq!(parse_memory_max("8589934592\n"), Some(8 << 30));
        assert_eq!(parse_memory_max("max\n"), None);
        assert!(default_budget_bytes() >= 1 << 20);
    }
}
