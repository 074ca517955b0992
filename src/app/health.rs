//! Readiness: whether this node should be sent requests (`/readyz`). A load balancer or
//! Kubernetes asks it every few seconds; a node that is draining, whose metadata database does
//! not answer, or whose runtime is gone says no, and traffic goes to the other nodes.
//!
//! Liveness (`/healthz`) is not here: it only says the process answers HTTP, so that a node
//! whose database is down is taken out of rotation, not restarted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::App;

/// How long one check's answer is reused. The endpoint is reachable by anyone on the data
/// listener: without this, a flood of `/readyz` would take the metadata pool's connections.
const REUSE_FOR: Duration = Duration::from_secs(1);

/// Time the database has to answer `SELECT 1`: a probe must answer well inside the load
/// balancer's own timeout (HAProxy's `timeout check`, Kubernetes' `timeoutSeconds`).
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// One readiness check: each part either fine or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `Err` while the node drains before shutting down.
    pub serving: Result<(), String>,
    /// `Err` when the metadata database did not answer.
    pub database: Result<(), String>,
    /// `Err` when the runtime cannot start a new tenant's interpreter.
    pub runtime: Result<(), String>,
}

impl Readiness {
    /// Whether every part is fine.
    pub fn is_ready(&self) -> bool {
        self.serving.is_ok() && self.database.is_ok() && self.runtime.is_ok()
    }
}

/// The node's lifecycle as readiness sees it, and the last check's answer.
#[derive(Default)]
pub struct HealthState {
    draining: AtomicBool,
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
}

impl App {
    /// Says the node is draining: from now on `/readyz` answers not ready, so load balancers
    /// stop sending new requests while the ones in flight finish.
    pub fn start_draining(&self) {
        self.health.draining.store(true, Ordering::SeqCst);
    }

    /// Whether this node should receive requests. Checks at most once per second; callers in
    /// between (and concurrent ones) share the last answer.
    pub async fn readiness(&self) -> Readiness {
        let serving = if self.health.draining.load(Ordering::SeqCst) {
            Err("draining: shutting down".to_string())
        } else {
            Ok(())
        };
        let mut last = self.health.last.lock().await;
        let checked = match &*last {
            Some((at, answer)) if at.elapsed() < REUSE_FOR => answer.clone(),
            _ => {
                let answer = self.check_parts().await;
                *last = Some((Instant::now(), answer.clone()));
                answer
            }
        };
        Readiness { serving, ..checked }
    }

    async fn check_parts(&self) -> Readiness {
        let database = match tokio::time::timeout(DATABASE_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the metadata database: {}", super::describe(&e))),
            Err(_) => Err(format!(
                "the metadata database did not answer within {} s",
                DATABASE_TIMEOUT.as_secs()
            )),
        };
        let runtime = self
            .sandbox
            .check_ready()
            .await
            .map_err(|e| format!("the Python runtime: {}", super::describe(&e)));
        Readiness {
            serving: Ok(()),
            database,
            runtime,
        }
    }
}
