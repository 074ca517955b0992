//! `GET /metrics` in Prometheus' text format, for the operator.
//!
//! Labels stay bounded: a tenant label only for tenants that exist (unknown names share one
//! value), an endpoint label only next to its tenant, and never tokens or paths.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

use crate::app::App;
use crate::egress::EgressCall;
use crate::sandbox::CallErrorKind;

mod metered;
use metered::Metered;

/// A data-plane request's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The tenant (or `_unknown`).
    pub tenant: String,
    /// The endpoint (empty when none matched).
    pub endpoint: String,
    /// The HTTP status.
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TenantLabel {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    tenant: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabels {
    tenant: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    tenant: String,
    database: String,
    state: String,
}

fn latency() -> Histogram {
    // 0.25 ms to ~16 s, doubling.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    total_seconds: Family<TenantLabel, Histogram, fn() -> Histogram>,
    sandbox_seconds: Family<TenantLabel, Histogram, fn() -> Histogram>,
    db_seconds: Family<TenantLabel, Histogram, fn() -> Histogram>,
    instances: Family<KindLabels, Counter>,
    limit_hits: Family<KindLabels, Counter>,
    warm_idle: Gauge,
    slots_in_use: Gauge,
    slots_max: Gauge,
    db_connections: Family<PoolLabels, Gauge>,
    tenant_warm_instances: Family<TenantLabel, Gauge>,
    tenant_snapshots: Family<TenantLabel, Gauge>,
    egress_requests: Family<EgressLabels, Counter>,
    egress_seconds: Family<TenantLabel, Counter<f64, AtomicU64>>,
    egress_bytes: Family<TenantLabel, Counter>,
    metered: Metered,
    budget_bytes: Gauge,
    resident_bytes: Gauge,
    evictions: Counter,
    snapshot_loads: Family<SourceLabel, Counter>,
    writes_dropped: Family<QueueLabel, Counter>,
}

/// A background writer's queue.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    /// `logs` or `replays`.
    queue: &'static str,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `disk` (compiled, loaded again) or `built` (Wizer ran).
    pub source: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pubfn");
        let requests = Family::<RequestLabels, Counter>::default();
        let total_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let sandbox_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let db_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let instances = Family::<KindLabels, Counter>::default();
        let limit_hits = Family::<KindLabels, Counter>::default();
        let (warm_idle, slots_in_use, slots_max) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let db_connections = Family::<PoolLabels, Gauge>::default();
        let tenant_warm_instances = Family::<TenantLabel, Gauge>::default();
        let tenant_snapshots = Family::<TenantLabel, Gauge>::default();
        let egress_requests = Family::<EgressLabels, Counter>::default();
        let egress_seconds = Family::<TenantLabel, Counter<f64, AtomicU64>>::default();
        let egress_bytes = Family::<TenantLabel, Counter>::default();
        let (budget_bytes, resident_bytes) = (Gauge::default(), Gauge::default());
        let evictions = Counter::default();
        let snapshot_loads = Family::<SourceLabel, Counter>::default();
        let writes_dropped = Family::<QueueLabel, Counter>::default();
        let metered = Metered::register(&mut registry);
        registry.register(
            "memory_budget_bytes",
            "The node's memory budget (--sandbox-memory-budget)",
            budget_bytes.clone(),
        );
        registry.register(
            "process_resident_bytes",
            "The server's resident memory, as the budget sees it",
            resident_bytes.clone(),
        );
        registry.register(
            "tenant_evictions",
            "Idle tenants whose snapshots, warm instances and pools were released under the memory budget",
            evictions.clone(),
        );
        registry.register(
            "snapshot_loads",
            "Snapshots loaded into memory: from disk (after a restart or an eviction) or built",
            snapshot_loads.clone(),
        );
        registry.register(
            "background_writes_dropped",
            "Handler log entries and replay recordings dropped because their write queue was full",
            writes_dropped.clone(),
        );
        registry.register(
            "egress_requests",
            "Handlers' outbound HTTP requests by tenant and result (ok, denied, timeout, ...)",
            egress_requests.clone(),
        );
        registry.register(
            "egress_seconds",
            "Time handlers spent waiting on outbound HTTP",
            egress_seconds.clone(),
        );
        registry.register(
            "egress_response_bytes",
            "Response body bytes handlers received over outbound HTTP",
            egress_bytes.clone(),
        );
        registry.register(
            "tenant_warm_instances",
            "Idle warm instances held for a tenant",
            tenant_warm_instances.clone(),
        );
        registry.register(
            "tenant_snapshot_loaded",
            "Whether a tenant's snapshot module is in memory",
            tenant_snapshots.clone(),
        );
        registry.register(
            "requests",
            "Data-plane requests by tenant, endpoint and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Data-plane request time, end to end",
            total_seconds.clone(),
        );
        registry.register(
            "sandbox_duration_seconds",
            "Time in the sandbox per request",
            sandbox_seconds.clone(),
        );
        registry.register(
            "db_duration_seconds",
            "Time in database calls per request",
            db_seconds.clone(),
        );
        registry.register(
            "instances",
            "Instances a request ran in: cold (new from the snapshot) or warm (reused)",
            instances.clone(),
        );
        registry.register(
            "limit_hits",
            "Calls stopped by a limit, by kind (cpu, wall, memory, stack, concurrency)",
            limit_hits.clone(),
        );
        registry.register(
            "warm_instances_idle",
            "Idle warm instances held in pools",
            warm_idle.clone(),
        );
        registry.register(
            "instance_slots_in_use",
            "Engine instance slots taken",
            slots_in_use.clone(),
        );
        registry.register(
            "instance_slots_max",
            "Engine instance slots in all",
            slots_max.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Tenant database connections by state (idle, in_use, waiting callers)",
            db_connections.clone(),
        );
        Metrics {
            registry,
            requests,
            total_seconds,
            sandbox_seconds,
            db_seconds,
            instances,
            limit_hits,
            warm_idle,
            slots_in_use,
            slots_max,
            db_connections,
            tenant_warm_instances,
            tenant_snapshots,
            egress_requests,
            egress_seconds,
            egress_bytes,
            metered,
            budget_bytes,
            resident_bytes,
            evictions,
            snapshot_loads,
            writes_dropped,
        }
    }
}

/// What one data-plane request did, for [`Metrics::record`].
pub struct RequestRecord<'a> {
    /// Labels of the request.
    pub labels: RequestLabels,
    /// End-to-end time.
    pub total: std::time::Duration,
    /// Time in the sandbox, if the handler ran.
    pub sandbox: Option<std::time::Duration>,
    /// Time in database calls.
    pub db: std::time::Duration,
    /// Whether a warm instance was reused (`None` if no instance ran).
    pub reused_instance: Option<bool>,
    /// The limit that stopped the call, if one did (see [`limit_kind`]).
    pub limit: Option<&'a str>,
    /// The handler's outbound requests.
    pub egress: &'a [EgressCall],
    /// What the handler's call used, if one ran.
    pub usage: Option<&'a crate::control::model::Usage>,
}

/// The kind of limit a failed call ran into, if it was a limit.
pub fn limit_kind(error: &CallErrorKind) -> Option<&'static str> {
    match error {
        CallErrorKind::CpuLimit { .. } => Some("cpu"),
        CallErrorKind::WallLimit { .. } => Some("wall"),
        CallErrorKind::MemoryLimit { .. } => Some("memory"),
        CallErrorKind::StackOverflow => Some("stack"),
        _ => None,
    }
}

impl Metrics {
    /// Records one data-plane request.
    pub fn record(&self, record: RequestRecord<'_>) {
        let tenant = record.labels.tenant.clone();
        let by_tenant = TenantLabel {
            tenant: tenant.clone(),
        };
        self.requests.get_or_create(&record.labels).inc();
        self.total_seconds
            .get_or_create(&by_tenant)
            .observe(record.total.as_secs_f64());
        if let Some(sandbox) = record.sandbox {
            self.sandbox_seconds
                .get_or_create(&by_tenant)
                .observe(sandbox.as_secs_f64());
            self.db_seconds
                .get_or_create(&by_tenant)
                .observe(record.db.as_secs_f64());
        }
        if let Some(reused) = record.reused_instance {
            let kind = if reused { "warm" } else { "cold" };
            self.instances
                .get_or_create(&KindLabels {
                    tenant: tenant.clone(),
                    kind: kind.into(),
                })
                .inc();
        }
        if let Some(kind) = record.limit {
            self.limit_hit(&tenant, kind);
        }
        if let Some(usage) = record.usage {
            self.metered.record(&by_tenant, usage);
        }
        for call in record.egress {
            self.egress_requests
                .get_or_create(&EgressLabels {
                    tenant: tenant.clone(),
                    result: call.result.into(),
                })
                .inc();
            self.egress_seconds
                .get_or_create(&by_tenant)
                .inc_by(call.duration.as_secs_f64());
            self.egress_bytes
                .get_or_create(&by_tenant)
                .inc_by(call.bytes as u64);
        }
    }

    /// Counts a call stopped by a limit the front end enforces (e.g. `concurrency`).
    pub fn limit_hit(&self, tenant: &str, kind: &str) {
        self.limit_hits
            .get_or_create(&KindLabels {
                tenant: tenant.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self, app: &App) -> String {
        let (sandbox, pools) = (app.sandbox(), app.pools());
        let budget = app.budget_stats();
        self.budget_bytes.set(budget.limit_bytes as i64);
        self.resident_bytes.set(budget.resident_bytes as i64);
        // Counted by the app and the sandbox; the counters follow them.
        self.evictions
            .inc_by(budget.evictions.saturating_sub(self.evictions.get()));
        let (disk, built) = sandbox.snapshot_loads();
        for (source, total) in [("disk", disk), ("built", built)] {
            let counter = self.snapshot_loads.get_or_create(&SourceLabel {
                source: source.into(),
            });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let dropped = app.dropped_writes();
        for (queue, total) in [("logs", dropped.logs), ("replays", dropped.replays)] {
            let counter = self.writes_dropped.get_or_create(&QueueLabel { queue });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.warm_idle.set(sandbox.idle_warm_instances() as i64);
        let (in_use, max) = sandbox.instance_slots();
        self.slots_in_use.set(in_use as i64);
        self.slots_max.set(max as i64);
        self.tenant_warm_instances.clear();
        self.tenant_snapshots.clear();
        for tenant in sandbox.residency() {
            let label = TenantLabel {
                tenant: tenant.tenant,
            };
            self.tenant_warm_instances
                .get_or_create(&label)
                .set(tenant.warm_instances as i64);
            self.tenant_snapshots
                .get_or_create(&label)
                .set(i64::from(tenant.snapshot_loaded));
        }
        self.db_connections.clear();
        for (tenant, database, size, idle, waiting) in pools.usage() {
            for (state, value) in [
                ("idle", idle),
                ("in_use", size.saturating_sub(idle)),
                ("waiting", waiting),
            ] {
                let labels = PoolLabels {
                    tenant: tenant.clone(),
                    database: database.clone(),
                    state: state.into(),
                };
                self.db_connections.get_or_create(&labels).set(value as i64);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
