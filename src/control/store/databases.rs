//! Tenants' named databases: provisioned on the metadata cluster as managed databases.

use rand::RngCore;
use serde::Serialize;

use super::{Store, notify};
use crate::control::ControlError;
use crate::db::DbTarget;
use crate::db::tenantdb::{self, ManagedNames};

/// A tenant database as the admin API shows it (never its credentials).
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseInfo {
    /// The tenant's name for it.
    pub name: String,
    /// `managed`.
    pub kind: String,
    /// The PostgreSQL database.
    pub dbname: String,
}

impl Store {
    /// Creates a managed database `name` for `tenant`.
    pub async fn add_managed_database(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<DatabaseInfo, ControlError> {
        self.tenant(tenant).await?;
        let valid = name.len() <= 31
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(ControlError::Invalid(format!(
                "database name {name:?}: lower-case letters, digits and '_', starting with a letter"
            )));
        }
        let client = self.client().await?;
        if client
            .query_opt(
                "SELECT 1 FROM pubfn.tenant_databases WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?
            .is_some()
        {
            return Err(ControlError::Conflict(format!(
                "tenant {tenant:?} already has a database {name:?}"
            )));
        }
        let names = tenantdb::managed_names(tenant, name);
        let password = {
            let mut bytes = [0u8; 24];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        tenantdb::harden_metadata_database(&client).await?;
        let base = self.config.clone();
        tenantdb::provision_managed(&client, &names, &password, |dbname| async move {
            let mut config = base;
            config.dbname(&dbname);
            let (inner, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok(inner)
        })
        .await?;
        client
            .execute(
                "INSERT INTO pubfn.tenant_databases (tenant, name, kind, dbname, role, password)
                 VALUES ($1, $2, 'managed', $3, $4, $5)",
                &[&tenant, &name, &names.dbname, &names.role, &password],
            )
            .await?;
        notify(&client, tenant).await?;
        Ok(DatabaseInfo {
            name: name.to_string(),
            kind: "managed".into(),
            dbname: names.dbname,
        })
    }

    /// Creates `schema` in the tenant's database `name`, owned by the tenant's role (which may
    /// not create schemas itself: that right would also let it create extensions).
    pub async fn create_schema(
        &self,
        tenant: &str,
        name: &str,
        schema: &str,
    ) -> Result<(), ControlError> {
        let target = self
            .database_targets(tenant)
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                ControlError::NotFound(format!("tenant {tenant:?} has no database {name:?}"))
            })?;
        let mut config = self.config.clone();
        config.dbname(&target.dbname);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}",
                tenantdb::quote_ident(schema),
                tenantdb::quote_ident(&target.role)
            ))
            .await?;
        Ok(())
    }

    /// The tenant's databases.
    pub async fn databases(&self, tenant: &str) -> Result<Vec<DatabaseInfo>, ControlError> {
        let rows = self
            .client()
            .await?
            .query("SELECT name, kind, dbname FROM pubfn.tenant_databases WHERE tenant = $1 ORDER BY name", &[&tenant])
            .await?;
        Ok(rows
            .iter()
            .map(|r| DatabaseInfo {
                name: r.get(0),
                kind: r.get(1),
                dbname: r.get(2),
            })
            .collect())
    }

    /// Where and as whom to reach each of the tenant's databases (for the data plane).
    pub async fn database_targets(&self, tenant: &str) -> Result<Vec<DbTarget>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, dbname, role, password FROM pubfn.tenant_databases WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DbTarget {
                tenant: tenant.to_string(),
                name: r.get(0),
                dbname: r.get(1),
                role: r.get(2),
                password: r.get(3),
            })
            .collect())
    }

    /// Drops a managed database, and the tenant's role once it has none left.
    pub async fn remove_database(&self, tenant: &str, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT dbname, role FROM pubfn.tenant_databases WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!("tenant {tenant:?} has no database {name:?}"))
            })?;
        let names = ManagedNames {
            dbname: row.get(0),
            role: row.get(1),
        };
        tenantdb::drop_managed(&client, &names).await?;
        client
            .execute(
                "DELETE FROM pubfn.tenant_databases WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        let role_in_use = client
            .query_opt(
                "SELECT 1 FROM pubfn.tenant_databases WHERE role = $1",
                &[&names.role],
            )
            .await?
            .is_some();
        if !role_in_use {
            tenantdb::drop_role(&client, &names.role).await?;
        }
        notify(&client, tenant).await
    }
}
