//! What a tenant's handlers reach besides their request: its databases (managed on pubfn's
//! cluster, or external; operator only) and its secrets (never shown back).

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::store::{DatabaseInfo, SecretInfo};

impl App {
    /// Gives the tenant database `name`: a managed one on pubfn's cluster, or the external
    /// PostgreSQL at `url` (checked by connecting, over TLS as its `sslmode` says, trusting
    /// `ca_pem` too; sealed at rest). Operator only.
    pub async fn add_database(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        url: Option<&str>,
        ca_pem: Option<&str>,
    ) -> Result<DatabaseInfo, AppError> {
        caller.operator_only()?;
        let database = match url {
            None if ca_pem.is_some() => {
                return Err(AppError::Invalid(
                    "ca_pem is for an external database's url".into(),
                ));
            }
            None => self.store.add_managed_database(tenant, name).await?,
            Some(url) => {
                self.store
                    .add_external_database(tenant, name, url, ca_pem)
                    .await?
            }
        };
        self.changed(tenant, ChangeKind::Databases).await;
        Ok(database)
    }

    /// The tenant's databases (never their credentials).
    pub async fn databases(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<DatabaseInfo>, AppError> {
        caller.may_manage(tenant)?;
        self.store.tenant(tenant).await?;
        Ok(self.store.databases(tenant).await?)
    }

    /// One of the tenant's databases.
    pub async fn database(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<DatabaseInfo, AppError> {
        self.databases(caller, tenant)
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                crate::control::ControlError::NotFound(format!(
                    "tenant {tenant:?} has no database {name:?}"
                ))
                .into()
            })
    }

    /// Removes a database: a managed one is dropped, an external one forgotten. Operator only.
    pub async fn remove_database(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<(), AppError> {
        caller.operator_only()?;
        self.store.remove_database(tenant, name).await?;
        self.changed(tenant, ChangeKind::Databases).await;
        Ok(())
    }

    /// Sets (or replaces) the tenant's secret `name`.
    pub async fn set_secret(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        value: &str,
    ) -> Result<SecretInfo, AppError> {
        caller.may_manage(tenant)?;
        let secret = self.store.set_secret(tenant, name, value).await?;
        self.changed(tenant, ChangeKind::Secrets).await;
        Ok(secret)
    }

    /// The tenant's secrets, by name only.
    pub async fn secrets(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<SecretInfo>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.secrets(tenant).await?)
    }

    /// Deletes the tenant's secret `name`.
    pub async fn delete_secret(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.store.delete_secret(tenant, name).await?;
        self.changed(tenant, ChangeKind::Secrets).await;
        Ok(())
    }
}
