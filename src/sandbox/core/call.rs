//! One call's way through the sandbox: a turn at a core, then a warm instance or a new one
//! from the tenant's snapshot (in an engine slot), the handler under its limits, and the
//! instance kept warm if it stayed healthy.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::super::code_cache::CodeKey;
use super::super::instance::Instance;
use super::super::pool::WarmKey;
use super::super::scheduler::{Ticket, Turn};
use super::super::snapshot::{self, SnapshotSource};
use super::super::{Call, CallError, CallErrorKind, Isolation, Limits, PackageSet, Reply};
use super::SandboxCore;

impl SandboxCore {
    /// Runs one request through its endpoint's handler.
    pub async fn handle(&self, call: Call, ticket: Option<Ticket>) -> Result<Reply, CallError> {
        let deadline = Instant::now() + call.limits.wall_time();
        let key = WarmKey {
            tenant: call.tenant.clone(),
            endpoint: call.endpoint,
            version: call.version,
            limits: call.limits,
        };
        let warm = call.isolation == Isolation::Warm;
        // The turn first: a request waiting for one must not hold a warm instance meanwhile,
        // or the requests behind it would find the pool empty and start cold.
        let turn = self
            .turn(&call.tenant, &call.limits, deadline, ticket)
            .await?;
        let (mut instance, reused) = match warm.then(|| self.warm.take(&key)).flatten() {
            Some(mut instance) => {
                instance.hold(turn);
                instance.meter = call.meter.clone();
                instance.seed(&call.seed);
                (instance, true)
            }
            None => {
                let source = call.script.source().clone();
                let mut instance = self
                    .instantiate(
                        &call.tenant,
                        call.packages.as_deref(),
                        source,
                        &call.limits,
                        deadline,
                        turn,
                    )
                    .await?;
                instance.meter = call.meter.clone();
                // Module-level code may use the capabilities, randomness and the clock too.
                instance.seed(&call.seed);
                let code_key = CodeKey {
                    tenant: call.tenant.clone(),
                    endpoint: key.endpoint.clone(),
                    version: key.version.clone(),
                    script: *call.script.sha256(),
                };
                let state = instance.store.data_mut();
                state.capabilities = call.capabilities.clone();
                state.deadline = Some(deadline);
                state.code.cached = self.code.get(&code_key);
                state.code.accepting = true;
                instance.load(&call.limits, deadline).await?;
                if let Some(code) = instance.store.data_mut().code.offered.take() {
                    self.code.put(code_key, code);
                }
                (instance, false)
            }
        };
        let state = instance.store.data_mut();
        state.reset_call();
        state.request = Some(call.request);
        state.capabilities = call.capabilities;
        state.deadline = Some(deadline);
        instance.handle(&call.limits, deadline).await?;
        let response = instance.store.data_mut().response.take().ok_or_else(|| {
            CallError::host("the driver finished without sending a response".into())
        })?;
        let output = instance.output.take();
        // Once: a warm instance reused later did not load anything for those calls.
        let snapshot_load = instance.snapshot_load.take();
        // Any failure above returned early and dropped the instance: only a clean one is kept,
        // and not one that ran into its memory limit, even if the handler recovered.
        let healthy = !instance.store.data().limiter.memory_refused;
        if warm && healthy && instance.served < self.config.warm_max_requests {
            instance.store.data_mut().reset_call();
            instance.release_turn();
            self.warm.put(key, instance);
        }
        Ok(Reply {
            response,
            output,
            reused_instance: reused,
            snapshot_load,
        })
    }

    /// A new instance of `tenant`'s snapshot, holding `turn` (instantiating, and resetting the
    /// memory when it is dropped, is CPU work too).
    pub(super) async fn instantiate(
        &self,
        tenant: &str,
        packages: Option<&PackageSet>,
        script: Arc<str>,
        limits: &Limits,
        deadline: Instant,
        mut turn: Turn,
    ) -> Result<Instance, CallError> {
        if limits.memory_bytes > self.config.max_memory_bytes {
            return Err(CallError::host(format!(
                "memory limit {} exceeds the sandbox's maximum {}",
                limits.memory_bytes, self.config.max_memory_bytes
            )));
        }
        // Neither a snapshot build nor a wait for an instance slot is work at a core: the turn
        // is given back meanwhile.
        let (pre, snapshot_load) = match self.snapshots.loaded(tenant, packages) {
            Some(pre) => (pre, None),
            None => {
                drop(turn);
                let started = Instant::now();
                let (pre, source) = self
                    .snapshots
                    .for_tenant(tenant, packages, snapshot::Urgency::Now)
                    .await
                    .map_err(|e| CallError::host(e.to_string()))?;
                let load = (source != SnapshotSource::Memory).then(|| (source, started.elapsed()));
                turn = self.turn(tenant, limits, deadline, None).await?;
                (pre, load)
            }
        };
        let slot = match self.try_slot() {
            Some(slot) => slot,
            None => {
                drop(turn);
                // Waiting for a free slot counts against the call's wall-clock limit.
                let slot = tokio::time::timeout_at(deadline.into(), self.acquire_slot())
                    .await
                    .map_err(|_| wall_limit(limits))??;
                turn = self.turn(tenant, limits, deadline, None).await?;
                slot
            }
        };
        let mut instance = Instance::new(
            &pre,
            &self.runtime,
            &self.scheduler,
            super::super::instance::Owner { tenant, packages },
            limits,
            script,
            slot,
        )
        .await?;
        instance.snapshot_load = snapshot_load;
        instance.hold(turn);
        Ok(instance)
    }

    /// A ticket for a turn at a core for `tenant`, if its snapshot is ready (else the request
    /// would hold a turn while the snapshot is built).
    pub fn early_ticket(&self, tenant: &str, packages: Option<&PackageSet>) -> Option<Ticket> {
        self.snapshots
            .is_loaded(tenant, packages)
            .then(|| self.scheduler.ticket(&Arc::from(tenant)))
    }

    /// A turn at a core for `tenant` (`ticket`'s, if given); waiting for it counts against the
    /// wall-clock limit.
    pub(super) async fn turn(
        &self,
        tenant: &str,
        limits: &Limits,
        deadline: Instant,
        ticket: Option<Ticket>,
    ) -> Result<Turn, CallError> {
        let ticket = ticket.unwrap_or_else(|| self.scheduler.ticket(&Arc::from(tenant)));
        tokio::time::timeout_at(deadline.into(), ticket.wait())
            .await
            .map_err(|_| wall_limit(limits))
    }

    /// An engine instance slot if one is free, or can be freed by evicting an idle warm one.
    fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => return Some(permit),
                Err(_) if self.warm.evict_one() => continue,
                Err(_) => return None,
            }
        }
    }

    /// An engine instance slot: idle warm instances give theirs up before a request waits.
    async fn acquire_slot(&self) -> Result<OwnedSemaphorePermit, CallError> {
        if let Some(slot) = self.try_slot() {
            return Ok(slot);
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::host("sandbox is shutting down".into()))
    }
}

/// The error of a call whose wall-clock limit ran out while it waited.
fn wall_limit(limits: &Limits) -> CallError {
    CallError {
        kind: CallErrorKind::WallLimit {
            limit_ms: limits.wall_ms,
        },
        output: String::new(),
    }
}
