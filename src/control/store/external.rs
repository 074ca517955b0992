//! External tenant databases: a PostgreSQL URL the operator registers for a tenant. pubfn
//! only connects to it; it neither creates nor drops anything there.

use super::databases::{DatabaseInfo, check_name, sealing_context};
use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;

/// An external URL's parts worth showing: `user@host:port/dbname`, never the password.
pub(super) fn location_of(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!(
        "{}@{host}{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl Store {
    /// Registers an external PostgreSQL database for `tenant`, after checking that pubfn can
    /// connect to it with the URL's `sslmode` (db/tls.rs) and `ca_pem`. The URL is sealed at
    /// rest and never shown again.
    pub async fn add_external_database(
        &self,
        tenant: &str,
        name: &str,
        url: &str,
        ca_pem: Option<&str>,
    ) -> Result<DatabaseInfo, ControlError> {
        self.tenant(tenant).await?;
        check_name(name)?;
        let (config, mode) = crate::db::tls::parse_url(url)
            .map_err(|e| ControlError::Invalid(format!("url: {e}")))?;
        let tls = crate::db::tls::connector(mode, ca_pem).map_err(ControlError::Invalid)?;
        if config.get_dbname().is_none() {
            return Err(ControlError::Invalid("url: names no database".into()));
        }
        let client = self.client().await?;
        self.refuse_duplicate(&client, tenant, name).await?;
        let mut probe = config.clone();
        probe.connect_timeout(std::time::Duration::from_secs(5));
        let (probe, connection) = probe.connect(tls).await.map_err(|e| {
            use std::error::Error as _;
            // TLS failures (an untrusted certificate, say) are in the error's source.
            let cause = e.source().map(|s| format!(": {s}")).unwrap_or_default();
            ControlError::Invalid(format!(
                "url: cannot connect to {}: {}",
                location_of(&config),
                e.as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| format!("{e}{cause}"))
            ))
        })?;
        tokio::spawn(connection);
        drop(probe);
        let location = location_of(&config);
        let sealed = self
            .key
            .seal(url.as_bytes(), &sealing_context(tenant, name));
        client
            .execute(
                "INSERT INTO pubfn.tenant_databases (tenant, name, kind, sealed, location, ca_pem)
                 VALUES ($1, $2, 'external', $3, $4, $5)",
                &[&tenant, &name, &sealed, &location, &ca_pem],
            )
            .await?;
        notify(&client, tenant, ChangeKind::Databases).await?;
        Ok(DatabaseInfo {
            name: name.to_string(),
            kind: "external".into(),
            dbname: None,
            location: Some(location),
        })
    }
}
