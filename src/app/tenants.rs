//! Tenants: created and capped by the operator, read by their admins, deleted with everything
//! they own.

use std::sync::Arc;

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::model::{Tenant, TenantLimits};

impl App {
    /// Creates a tenant (operator only) and starts building its interpreter snapshot, so its
    /// first request does not wait for it.
    pub async fn create_tenant(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        limits: TenantLimits,
    ) -> Result<Tenant, AppError> {
        caller.operator_only()?;
        limits.validate().map_err(AppError::Invalid)?;
        let tenant = self.store.create_tenant(name, limits).await?;
        self.changed(&tenant.name, ChangeKind::Tenant).await;
        let (app, name) = (self.clone(), tenant.name.clone());
        tokio::spawn(async move {
            if let Err(e) = app.sandbox.prepare_tenant(&name).await {
                tracing::error!(tenant = %name, "building the tenant's snapshot: {}", super::describe(&e));
            }
        });
        Ok(tenant)
    }

    /// Every tenant, by name (operator only).
    pub async fn list_tenants(&self, caller: &Caller) -> Result<Vec<Tenant>, AppError> {
        caller.operator_only()?;
        Ok(self.store.list_tenants().await?)
    }

    /// One tenant.
    pub async fn tenant(&self, caller: &Caller, name: &str) -> Result<Tenant, AppError> {
        caller.may_manage(name)?;
        Ok(self.store.tenant(name).await?)
    }

    /// Replaces a tenant's caps (operator only).
    pub async fn set_tenant_limits(
        &self,
        caller: &Caller,
        name: &str,
        limits: TenantLimits,
    ) -> Result<Tenant, AppError> {
        caller.operator_only()?;
        limits.validate().map_err(AppError::Invalid)?;
        let tenant = self.store.set_tenant_limits(name, limits).await?;
        self.changed(name, ChangeKind::Tenant).await;
        Ok(tenant)
    }

    /// Deletes a tenant and everything it owns (operator only); every node lets go of its
    /// snapshot, instances and pools.
    pub async fn delete_tenant(&self, caller: &Caller, name: &str) -> Result<(), AppError> {
        caller.operator_only()?;
        self.store.delete_tenant(name).await?;
        self.changed(name, ChangeKind::Deleted).await;
        Ok(())
    }
}
