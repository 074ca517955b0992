//! The keeper of failed calls' recordings: requests hand them to a bounded queue and never
//! wait for PostgreSQL; a background task seals and writes them one by one, and prunes. When
//! failures come faster than they can be written, recordings are dropped and counted (a
//! storm of 500s needs a few recordings, not all of them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Store;
use super::store::NewRecording;

/// Recordings waiting to be written at most.
const QUEUE: usize = 64;
/// How often expired recordings are deleted when no new one comes to do it.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// How long and how many recordings are kept.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRetention {
    /// A recording goes after this long, in seconds.
    pub ttl_secs: i64,
    /// Each tenant keeps at most this many, the newest.
    pub max_per_tenant: i64,
}

impl Default for ReplayRetention {
    fn default() -> Self {
        ReplayRetention {
            ttl_secs: 24 * 3600,
            max_per_tenant: 20,
        }
    }
}

/// A recording on its way to the store.
pub struct PendingRecording {
    /// The tenant.
    pub tenant: String,
    /// The request's id.
    pub request_id: String,
    /// The endpoint.
    pub endpoint: String,
    /// The status the client got.
    pub status: u16,
    /// Capability calls held.
    pub calls: usize,
    /// The recording's JSON.
    pub contents: Vec<u8>,
}

/// The handle calls keep recordings through.
#[derive(Clone)]
pub struct ReplayKeeper {
    tx: mpsc::Sender<PendingRecording>,
    dropped: Arc<AtomicU64>,
}

impl ReplayKeeper {
    /// Starts the writer task.
    pub fn start(store: Store, retention: ReplayRetention) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, retention, rx));
        ReplayKeeper {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Queues `recording`; drops it (and counts the drop) if the queue is full.
    pub fn keep(&self, recording: PendingRecording) {
        if self.tx.try_send(recording).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "replay recording queue full: recordings dropped");
            }
        }
    }

    /// Recordings dropped so far because the queue was full (for `/metrics`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write(store: Store, retention: ReplayRetention, mut rx: mpsc::Receiver<PendingRecording>) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        let pending = tokio::select! {
            pending = rx.recv() => match pending {
                Some(pending) => pending,
                None => return,
            },
            _ = prune.tick() => {
                if let Err(e) = store.prune_recordings().await {
                    tracing::warn!("pruning replay recordings failed: {e:?}");
                }
                continue;
            }
        };
        let recording = NewRecording {
            tenant: &pending.tenant,
            request_id: &pending.request_id,
            endpoint: &pending.endpoint,
            status: pending.status,
            calls: pending.calls,
            contents: &pending.contents,
        };
        let kept = store
            .keep_recording(&recording, retention.ttl_secs, retention.max_per_tenant)
            .await;
        if let Err(e) = kept {
            tracing::warn!(tenant = %pending.tenant, "keeping a replay recording failed: {e:?}");
            // A store that fails is likely to fail the next one too: do not spin on it.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
