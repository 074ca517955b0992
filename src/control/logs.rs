//! The writer of handlers' logs: requests hand entries to a bounded queue and never wait for
//! PostgreSQL; a background task writes them in batches and prunes old ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
}

impl Default for LogRetention {
    fn default() -> Self {
        LogRetention {
            max_age_secs: 7 * 24 * 3600,
            max_per_tenant: 10_000,
            prune_every: Duration::from_secs(60),
        }
    }
}

/// The handle requests log through.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogEntry>,
    dropped: Arc<AtomicU64>,
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
        }
    }

    /// Queues an entry; drops it (and counts the drop) if the queue is full.
    pub fn record(&self, entry: LogEntry) {
        if self.tx.try_send(entry).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "handler log queue full: entries dropped");
            }
        }
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
            tracing::warn!(entries = batch.len(), "writing handler logs failed: {e}");
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
            tracing::warn!("pruning handler logs failed: {e}");
        }
    }
}
