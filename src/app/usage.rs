//! Metering, as tenants and operators read it: a tenant's usage per endpoint and hour.

use serde::Serialize;

use super::{App, AppError, Caller};
use crate::control::ControlError;
use crate::control::store::UsageHour;
use crate::control::usage::Totals;

/// A tenant's usage over a period.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    /// The tenant.
    pub tenant: String,
    /// The period's start, as asked (default: `-infinity`, the first hour metered).
    pub from: String,
    /// The period's end, as asked (default: `infinity`).
    pub to: String,
    /// Each endpoint's totals for each hour starting in the period, oldest first.
    pub hours: Vec<UsageHour>,
    /// The sums of them all.
    pub totals: Totals,
}

impl App {
    /// `tenant`'s metered usage for the hours starting in `[from, to)` (RFC 3339), this node's
    /// latest calls included (its pending totals are written first).
    pub async fn usage(
        &self,
        caller: &Caller,
        tenant: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageReport, AppError> {
        caller.may_manage(tenant)?;
        self.store.tenant(tenant).await?;
        self.flush_usage().await?;
        let from = from.map_or_else(|| "-infinity".to_string(), str::to_string);
        let to = to.map_or_else(|| "infinity".to_string(), str::to_string);
        for (name, value) in [("from", &from), ("to", &to)] {
            if value.len() > 64 {
                return Err(AppError::Invalid(format!("{name}: not a time")));
            }
        }
        let hours = self.store.usage(tenant, &from, &to).await?;
        let mut totals = Totals::default();
        for hour in &hours {
            totals.add(&hour.totals);
        }
        Ok(UsageReport {
            tenant: tenant.to_string(),
            from,
            to,
            hours,
            totals,
        })
    }

    /// Writes this node's pending usage totals now.
    pub async fn flush_usage(&self) -> Result<(), ControlError> {
        self.usage.flush().await
    }
}
