//! Tenants' named databases: managed ones provisioned on the metadata cluster, external ones
//! registered by URL. Credentials are sealed at rest (control/sealed.rs).

use rand::RngCore;
use serde::Serialize;

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;
use crate::db::tenantdb::{self, ManagedNames, Renamed};
use crate::db::{DbConnection, DbTarget};

/// A tenant database as the admin API shows it (never its credentials).
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseInfo {
    /// The tenant's name for it.
    pub name: String,
    /// `managed` or `external`.
    pub kind: String,
    /// The PostgreSQL database of a managed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbname: Option<String>,
    /// Where an external one is: its URL without the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// What the sealed column of a tenant database row is bound to.
pub(super) fn sealing_context(tenant: &str, name: &str) -> String {
    format!("database {tenant}/{name}")
}

/// Checks the tenant's name for a database.
pub(super) fn check_name(name: &str) -> Result<(), ControlError> {
    let valid = name.len() <= 31
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "database name {name:?}: lower-case letters, digits and '_', starting with a letter"
        )))
    }
}

impl Store {
    /// Creates a managed database `name` for `tenant`.
    pub async fn add_managed_database(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<DatabaseInfo, ControlError> {
        self.tenant(tenant).await?;
        check_name(name)?;
        let client = self.client().await?;
        self.refuse_duplicate(&client, tenant, name).await?;
        // The role is shared by the tenant's managed databases: keep it and its password.
        let role: Option<String> = client
            .query_opt(
                "SELECT role FROM pubfn.tenant_databases
                 WHERE tenant = $1 AND kind = 'managed' LIMIT 1",
                &[&tenant],
            )
            .await?
            .map(|row| row.get(0));
        let names = ManagedNames::generate(role.as_deref());
        let password = match self.role_password(&client, tenant, &names.role).await? {
            Some(password) => password,
            None => {
                let mut bytes = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                hex::encode(bytes)
            }
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
        let sealed = self
            .key
            .seal(password.as_bytes(), &sealing_context(tenant, name));
        client
            .execute(
                "INSERT INTO pubfn.tenant_databases (tenant, name, kind, dbname, role, sealed)
                 VALUES ($1, $2, 'managed', $3, $4, $5)",
                &[&tenant, &name, &names.dbname, &names.role, &sealed],
            )
            .await?;
        notify(&client, tenant, ChangeKind::Databases).await?;
        Ok(DatabaseInfo {
            name: name.to_string(),
            kind: "managed".into(),
            dbname: Some(names.dbname),
            location: None,
        })
    }

    pub(super) async fn refuse_duplicate(
        &self,
        client: &deadpool_postgres::Object,
        tenant: &str,
        name: &str,
    ) -> Result<(), ControlError> {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pubfn.tenant_databases WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?
            .is_some();
        if exists {
            return Err(ControlError::Conflict(format!(
                "tenant {tenant:?} already has a database {name:?}"
            )));
        }
        Ok(())
    }

    /// The password of the tenant's role, if one of its managed databases holds it already.
    async fn role_password(
        &self,
        client: &deadpool_postgres::Object,
        tenant: &str,
        role: &str,
    ) -> Result<Option<String>, ControlError> {
        let row = client
            .query_opt(
                "SELECT name, sealed FROM pubfn.tenant_databases
                 WHERE tenant = $1 AND role = $2 AND sealed IS NOT NULL LIMIT 1",
                &[&tenant, &role],
            )
            .await?;
        row.map(|row| {
            Ok(self
                .key
                .open_text(row.get(1), &sealing_context(tenant, row.get(0)))?)
        })
        .transpose()
    }

    /// Seals the plaintext passwords that rows written before migration 4 hold.
    pub(super) async fn seal_legacy_passwords(&self) -> Result<(), ControlError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT tenant, name, password FROM pubfn.tenant_databases WHERE password IS NOT NULL",
                &[],
            )
            .await?;
        for row in rows {
            let (tenant, name, password): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let sealed = self
                .key
                .seal(password.as_bytes(), &sealing_context(&tenant, &name));
            client
                .execute(
                    "UPDATE pubfn.tenant_databases SET sealed = $3, password = NULL
                     WHERE tenant = $1 AND name = $2",
                    &[&tenant, &name, &sealed],
                )
                .await?;
        }
        Ok(())
    }

    /// Renames managed databases and roles an older pubfn named after their tenant (every
    /// tenant role can list them). A database in use keeps its name until a later start.
    pub(super) async fn rename_revealing_databases(&self) -> Result<(), ControlError> {
        let client = self.client().await?;
        // Roles first: a role serves all of its tenant's databases.
        for (column, what) in [("role", Renamed::Role), ("dbname", Renamed::Database)] {
            let rows = client
                .query(
                    &format!(
                        "SELECT DISTINCT tenant, {column} FROM pubfn.tenant_databases \
                         WHERE kind = 'managed'"
                    ),
                    &[],
                )
                .await?;
            for row in rows {
                let (tenant, from): (String, String) = (row.get(0), row.get(1));
                if ManagedNames::is_opaque(&from) {
                    continue;
                }
                let fresh = ManagedNames::generate(None);
                let to = match what {
                    Renamed::Role => fresh.role,
                    Renamed::Database => fresh.dbname,
                };
                if let Err(e) = tenantdb::rename(&client, what, &from, &to).await {
                    tracing::warn!(%tenant, "{what:?} {from} keeps its old name for now: {e}");
                    continue;
                }
                client
                    .execute(
                        &format!(
                            "UPDATE pubfn.tenant_databases SET {column} = $2 WHERE {column} = $1"
                        ),
                        &[&from, &to],
                    )
                    .await?;
                notify(&client, &tenant, ChangeKind::Databases).await?;
            }
        }
        Ok(())
    }

    /// Gives every tenant role what its warehouse allows (roles made by an older pubfn could
    /// not create schemas). Idempotent.
    pub(super) async fn grant_warehouses(&self) -> Result<(), ControlError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT dbname, role FROM pubfn.tenant_databases WHERE kind = 'managed'",
                &[],
            )
            .await?;
        for row in rows {
            let (dbname, role): (&str, &str) = (row.get(0), row.get(1));
            if let Err(e) = client
                .batch_execute(&tenantdb::grant_warehouse(dbname, role))
                .await
            {
                tracing::warn!(dbname, "granting a warehouse's rights failed: {e}");
            }
        }
        Ok(())
    }

    /// Creates `schema` in the tenant's managed database `name`, owned by the tenant's role
    /// (which may not create schemas itself: that right would also let it create extensions).
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
        let DbConnection::Managed { dbname, role, .. } = &target.connection else {
            return Err(ControlError::Invalid(format!(
                "{name:?} is an external database: make schemas in it yourself"
            )));
        };
        let mut config = self.config.clone();
        config.dbname(dbname);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}",
                tenantdb::quote_ident(schema),
                tenantdb::quote_ident(role)
            ))
            .await?;
        Ok(())
    }

    /// The tenant's default warehouse: its first managed database.
    pub async fn default_warehouse(&self, tenant: &str) -> Result<Option<String>, ControlError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT name FROM pubfn.tenant_databases WHERE tenant = $1 AND kind = 'managed'
                 ORDER BY created_at, name LIMIT 1",
                &[&tenant],
            )
            .await?
            .map(|row| row.get(0)))
    }

    /// The tenant's databases.
    pub async fn databases(&self, tenant: &str) -> Result<Vec<DatabaseInfo>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, kind, dbname, location FROM pubfn.tenant_databases
                 WHERE tenant = $1 ORDER BY name",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DatabaseInfo {
                name: r.get(0),
                kind: r.get(1),
                dbname: r.get(2),
                location: r.get(3),
            })
            .collect())
    }

    /// Where and as whom to reach each of the tenant's databases (for the data plane).
    pub async fn database_targets(&self, tenant: &str) -> Result<Vec<DbTarget>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, kind, dbname, role, sealed, ca_pem FROM pubfn.tenant_databases
                 WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.get(0);
                let kind: &str = r.get(1);
                let plain = self
                    .key
                    .open_text(r.get(4), &sealing_context(tenant, &name))?;
                let connection = match kind {
                    "managed" => DbConnection::Managed {
                        dbname: r.get(2),
                        role: r.get(3),
                        password: plain,
                    },
                    _ => DbConnection::External {
                        url: plain,
                        ca_pem: r.get(5),
                    },
                };
                Ok(DbTarget {
                    tenant: tenant.to_string(),
                    name,
                    connection,
                })
            })
            .collect()
    }

    /// Removes a tenant database: a managed one is dropped, and the tenant's role once it has
    /// none left; an external one is only forgotten.
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
        let managed: Option<ManagedNames> = match (row.get(0), row.get(1)) {
            (Some(dbname), Some(role)) => Some(ManagedNames { dbname, role }),
            _ => None,
        };
        if let Some(names) = &managed {
            tenantdb::drop_managed(&client, names).await?;
        }
        client
            .execute(
                "DELETE FROM pubfn.tenant_databases WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if let Some(names) = managed {
            let role_in_use = client
                .query_opt(
                    "SELECT 1 FROM pubfn.tenant_databases WHERE role = $1 LIMIT 1",
                    &[&names.role],
                )
                .await?
                .is_some();
            if !role_in_use {
                tenantdb::drop_role(&client, &names.role).await?;
            }
        }
        notify(&client, tenant, ChangeKind::Databases).await
    }
}
