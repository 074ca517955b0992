//! The writer of handlers' logs: requests hand entries to a bounded queue and never wait for
//! PostgreSQL; a background task writes them in batches and prunes old ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::Store;
use super::model::LogEntry;

/// Entries waiting to be written at most; beyond this, entries are dropped and counted.
const QUEUE: usize = 10_000;
/// Entries written per statement at most.
const BATCH: usize = 500;
/// How long the writer gathers entries after the first before writing them: one statement
/// for many rows costs PostgreSQL far less than a statement per few rows (at 5,000 req/s the
/// log inserts took 16 % of the machine's CPU with batches of a handful), and a log line
/// showing up 20 ms later is no loss.
const LINGER: Duration = Duration::from_millis(20);

/// How long logs are kept.
#[derive(Debug, Clone, Copy)]
pub struct LogRetention {
    /// Entries older than this go, in seconds.
    pub max_age_secs: i64,
    /// Each tenant keeps at most this many entries.
    pub max_per_tenant: i64,
    /// How often pruning runs.
    pub prune_every: Duration,
    /// Routine entries (a status below 400, no output, no error) written per tenant and
    /// second at most; entries with something to say are always written.
    pub routine_per_second: u32,
}

impl Default for LogRetention {
    fn default() -> Self {
        LogRetention {
            max_age_secs: 7 * 24 * 3600,
            max_per_tenant: 10_000,
            prune_every: Duration::from_secs(60),
            routine_per_second: 100,
        }
    }
}

/// The handle requests log through.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogEntry>,
    dropped: Arc<AtomicU64>,
    routine: Arc<RoutineBudget>,
}

/// How many routine entries each tenant may still write: a token bucket per tenant, refilled
/// at `per_second` and holding a second's worth. At thousands of requests a second, writing
/// every successful call cost PostgreSQL a tenth of the machine while the count cap kept only
/// the last few seconds of them anyway; metrics still count every request.
struct RoutineBudget {
    per_second: f64,
    buckets: DashMap<String, (f64, Instant)>,
}

impl RoutineBudget {
    fn admit(&self, tenant: &str) -> bool {
        let now = Instant::now();
        let mut bucket = self
            .buckets
            .entry(tenant.to_string())
            .or_insert((self.per_second, now));
        let (tokens, last) = &mut *bucket;
        *tokens = (*tokens + (now - *last).as_secs_f64() * self.per_second).min(self.per_second);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl LogSink {
    /// Starts the writer and pruner tasks.
    pub fn start(store: Store, retention: LogRetention) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store.clone(), rx));
        tokio::spawn(prune(store, retention));
        LogSink {
            tx,
            dropped: Arc::default(),
            routine: Arc::new(RoutineBudget {
                per_second: f64::from(retention.routine_per_second),
                buckets: DashMap::new(),
            }),
        }
    }

    /// Queues an entry; drops it (and counts the drop) if the queue is full. A routine entry
    /// (below 400, no output, no error) beyond its tenant's rate is skipped.
    pub fn record(&self, entry: LogEntry) {
        let routine = entry.status < 400 && entry.output.is_empty() && entry.error.is_none();
        if routine && !self.routine.admit(&entry.tenant) {
            return;
        }
        if self.tx.try_send(entry).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "handler log queue full: entries dropped");
            }
        }
    }

    /// Entries dropped so far because the queue was full (for `/metrics`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<LogEntry>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                received = rx.recv_many(&mut batch, room) => if received == 0 { break },
                _ = &mut linger => break,
            }
        }
        if let Err(e) = store.insert_logs(&batch).await {
            tracing::warn!(entries = batch.len(), "writing handler logs failed: {e:?}");
        }
        batch.clear();
    }
}

async fn prune(store: Store, retention: LogRetention) {
    let mut every = tokio::time::interval(retention.prune_every);
    loop {
        every.tick().await;
        if let Err(e) = store
            .prune_logs(retention.max_age_secs, retention.max_per_tenant)
            .await
        {
            tracing::warn!("pruning handler logs failed: {e:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LogEntry, LogSink, RoutineBudget};
    use dashmap::DashMap;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn entry(status: u16) -> LogEntry {
        LogEntry {
            id: None,
            tenant: "acme".into(),
            endpoint: "hello".into(),
            version: 1,
            request_id: "r1".into(),
            method: "GET".into(),
            path: "/hello".into(),
            status,
            duration_ms: 1.0,
            output: String::new(),
            error: None,
            traceback: None,
            usage: None,
            created_at: None,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_what_it_cannot_hold() {
        // A queue of two that nobody drains: the third and fourth entries are dropped.
        let (tx, _rx) = mpsc::channel(2);
        let sink = LogSink {
            tx,
            dropped: Arc::default(),
            routine: Arc::new(RoutineBudget {
                per_second: 100.0,
                buckets: DashMap::new(),
            }),
        };
        for _ in 0..4 {
            sink.record(entry(500));
        }
        assert_eq!(sink.dropped(), 2);
        sink.record(entry(200));
        assert_eq!(sink.dropped(), 3, "routine entries count too once admitted");
    }

    #[test]
    fn each_tenant_gets_its_own_second_of_routine_entries() {
        let budget = RoutineBudget {
            per_second: 5.0,
            buckets: DashMap::new(),
        };
        let admitted = (0..20).filter(|_| budget.admit("busy")).count();
        assert_eq!(
            admitted, 5,
            "a second's worth, then nothing until it refills"
        );
        assert!(budget.admit("quiet"), "another tenant's budget is its own");
        let none = RoutineBudget {
            per_second: 0.0,
            buckets: DashMap::new(),
        };
        assert!(!none.admit("busy"), "0 writes no routine entry");
    }
}
