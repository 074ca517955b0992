//! Metering's hourly totals per endpoint: added to in batches, read per tenant and period.

use serde::Serialize;

use super::Store;
use crate::control::ControlError;
use crate::control::usage::{HourKey, Totals};

/// One endpoint's totals for one hour.
#[derive(Debug, Clone, Serialize)]
pub struct UsageHour {
    /// The endpoint.
    pub endpoint: String,
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    /// The totals.
    #[serde(flatten)]
    pub totals: Totals,
}

impl Store {
    /// Adds `batch` to the hourly totals (peaks take the larger); a deleted tenant's are
    /// dropped.
    pub async fn add_usage(&self, batch: &[(HourKey, Totals)]) -> Result<(), ControlError> {
        if batch.is_empty() {
            return Ok(());
        }
        let text = |f: fn(&HourKey) -> String| batch.iter().map(|(k, _)| f(k)).collect::<Vec<_>>();
        let (tenants, endpoints) = (text(|k| k.tenant.clone()), text(|k| k.endpoint.clone()));
        let hours: Vec<i64> = batch.iter().map(|(k, _)| k.hour).collect();
        let number = |f: fn(&Totals) -> u64| {
            batch
                .iter()
                .map(|(_, t)| i64::try_from(f(t)).unwrap_or(i64::MAX))
                .collect::<Vec<i64>>()
        };
        let columns = [
            number(|t| t.calls),
            number(|t| t.errors),
            number(|t| t.cpu_us),
            number(|t| t.db_us),
            number(|t| t.db_round_trips),
            number(|t| t.egress_us),
            number(|t| t.egress_bytes),
            number(|t| t.response_bytes),
            number(|t| t.peak_memory_bytes),
        ];
        let client = self.client().await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO pubfn.usage_hourly AS u (tenant, endpoint, hour, calls, errors, cpu_us,
                   db_us, db_round_trips, egress_us, egress_bytes, response_bytes,
                   peak_memory_bytes)
                 SELECT b.tenant, b.endpoint, to_timestamp(b.hour), b.calls, b.errors, b.cpu_us,
                   b.db_us, b.db_round_trips, b.egress_us, b.egress_bytes, b.response_bytes,
                   b.peak_memory_bytes
                 FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                   $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[],
                   $12::int8[])
                   AS b(tenant, endpoint, hour, calls, errors, cpu_us, db_us, db_round_trips,
                        egress_us, egress_bytes, response_bytes, peak_memory_bytes)
                 WHERE EXISTS (SELECT 1 FROM pubfn.tenants t WHERE t.name = b.tenant)
                 ON CONFLICT (tenant, hour, endpoint) DO UPDATE SET
                   calls = u.calls + EXCLUDED.calls,
                   errors = u.errors + EXCLUDED.errors,
                   cpu_us = u.cpu_us + EXCLUDED.cpu_us,
                   db_us = u.db_us + EXCLUDED.db_us,
                   db_round_trips = u.db_round_trips + EXCLUDED.db_round_trips,
                   egress_us = u.egress_us + EXCLUDED.egress_us,
                   egress_bytes = u.egress_bytes + EXCLUDED.egress_bytes,
                   response_bytes = u.response_bytes + EXCLUDED.response_bytes,
                   peak_memory_bytes = greatest(u.peak_memory_bytes, EXCLUDED.peak_memory_bytes)",
            )
            .await?;
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8] = &columns;
        client
            .execute(
                &upsert,
                &[
                    &tenants, &endpoints, &hours, c0, c1, c2, c3, c4, c5, c6, c7, c8,
                ],
            )
            .await?;
        Ok(())
    }

    /// `tenant`'s hourly totals per endpoint for the hours starting in `[from, to)` (RFC 3339
    /// text, checked by PostgreSQL), oldest first.
    pub async fn usage(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageHour>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT endpoint, ",
                    ts!("hour" AS "hour"),
                    ", calls, errors, cpu_us, db_us, db_round_trips, egress_us, egress_bytes,
                       response_bytes, peak_memory_bytes
                     FROM pubfn.usage_hourly
                     WHERE tenant = $1 AND hour >= $2::text::timestamptz
                       AND hour < $3::text::timestamptz
                     ORDER BY hour, endpoint"
                ),
                &[&tenant, &from, &to],
            )
            .await?;
        let number = |row: &tokio_postgres::Row, column: &str| {
            u64::try_from(row.get::<_, i64>(column)).unwrap_or(0)
        };
        Ok(rows
            .iter()
            .map(|row| UsageHour {
                endpoint: row.get("endpoint"),
                hour: row.get("hour"),
                totals: Totals {
                    calls: number(row, "calls"),
                    errors: number(row, "errors"),
                    cpu_us: number(row, "cpu_us"),
                    db_us: number(row, "db_us"),
                    db_round_trips: number(row, "db_round_trips"),
                    egress_us: number(row, "egress_us"),
                    egress_bytes: number(row, "egress_bytes"),
                    response_bytes: number(row, "response_bytes"),
                    peak_memory_bytes: number(row, "peak_memory_bytes"),
                },
            })
            .collect())
    }
}
