//! Outbound HTTP: the operator's allow-list of a tenant (tenant admins may read it) and the
//! tenant's stored connections (`pq.connect(name)`), whose credentials are never shown back.

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::store::{ConnectionInfo, ConnectionSpec};

impl App {
    /// Replaces the tenant's egress allow-list; gives it back normalised. Operator only.
    pub async fn set_egress(
        &self,
        caller: &Caller,
        tenant: &str,
        allow: &[String],
    ) -> Result<Vec<String>, AppError> {
        caller.operator_only()?;
        let allow = self.store.set_egress(tenant, allow).await?;
        self.changed(tenant, ChangeKind::Egress).await;
        Ok(allow)
    }

    /// The tenant's egress allow-list.
    pub async fn egress(&self, caller: &Caller, tenant: &str) -> Result<Vec<String>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.egress(tenant).await?)
    }

    /// Sets (or replaces) the tenant's stored connection `name`.
    pub async fn put_connection(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        spec: &ConnectionSpec,
    ) -> Result<ConnectionInfo, AppError> {
        caller.may_manage(tenant)?;
        let connection = self.store.put_connection(tenant, name, spec).await?;
        self.changed(tenant, ChangeKind::Egress).await;
        Ok(connection)
    }

    /// The tenant's connections: names and base URLs only.
    pub async fn connections(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<ConnectionInfo>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.connections(tenant).await?)
    }

    /// Deletes the tenant's connection `name`.
    pub async fn delete_connection(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.store.delete_connection(tenant, name).await?;
        self.changed(tenant, ChangeKind::Egress).await;
        Ok(())
    }
}
