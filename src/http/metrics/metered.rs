//! The metering counters of `/metrics`: what tenants' calls used, per tenant.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::TenantLabel;
use crate::control::model::Usage;

/// Per-tenant counters of what calls used, for billing: each a running sum that a rate or an
/// increase over a period turns into a bill.
pub(super) struct Metered {
    cpu_seconds: Family<TenantLabel, Counter<f64, AtomicU64>>,
    db_seconds: Family<TenantLabel, Counter<f64, AtomicU64>>,
    db_round_trips: Family<TenantLabel, Counter>,
    egress_bytes: Family<TenantLabel, Counter>,
    response_bytes: Family<TenantLabel, Counter>,
    memory_byte_seconds: Family<TenantLabel, Counter<f64, AtomicU64>>,
}

impl Metered {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metered = Metered {
            cpu_seconds: Family::default(),
            db_seconds: Family::default(),
            db_round_trips: Family::default(),
            egress_bytes: Family::default(),
            response_bytes: Family::default(),
            memory_byte_seconds: Family::default(),
        };
        let m = &metered;
        registry.register(
            "cpu_seconds",
            "CPU time of handlers' calls: guest code and the host's side of its calls",
            m.cpu_seconds.clone(),
        );
        registry.register(
            "db_seconds",
            "Time handlers spent in database calls",
            m.db_seconds.clone(),
        );
        registry.register(
            "db_round_trips",
            "Database calls handlers made",
            m.db_round_trips.clone(),
        );
        registry.register(
            "egress_bytes",
            "Outbound HTTP response bytes handlers received",
            m.egress_bytes.clone(),
        );
        registry.register(
            "response_bytes",
            "Response body bytes handlers sent to clients",
            m.response_bytes.clone(),
        );
        registry.register(
            "memory_byte_seconds",
            "Peak memory of each call times its CPU time: memory held, as billed",
            m.memory_byte_seconds.clone(),
        );
        metered
    }

    pub(super) fn record(&self, tenant: &TenantLabel, usage: &Usage) {
        let cpu = usage.cpu_us as f64 / 1e6;
        self.cpu_seconds.get_or_create(tenant).inc_by(cpu);
        self.db_seconds
            .get_or_create(tenant)
            .inc_by(usage.db_us as f64 / 1e6);
        self.db_round_trips
            .get_or_create(tenant)
            .inc_by(usage.db_round_trips);
        self.egress_bytes
            .get_or_create(tenant)
            .inc_by(usage.egress_bytes);
        self.response_bytes
            .get_or_create(tenant)
            .inc_by(usage.response_bytes);
        self.memory_byte_seconds
            .get_or_create(tenant)
            .inc_by(usage.peak_memory_bytes as f64 * cpu);
    }
}
