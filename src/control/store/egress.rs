//! Tenants' outbound HTTP: the operator's allow-list, and stored connections whose headers and
//! query parameters (API keys, tokens) are sealed at rest and never listed back.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;
use crate::egress::AllowList;
use crate::egress::tenant::StoredConnection;

/// Largest sealed part (headers and query) of one connection, in bytes of JSON.
pub const MAX_CONNECTION_SECRET_BYTES: usize = 64 << 10;

/// A connection as an admin sets it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// Every request's URL starts with it: `https://api.example.com/v3`.
    pub base_url: String,
    /// Headers added to every request (`{"Authorization": "Bearer ..."}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters appended to every request (`{"api_key": "..."}`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

/// A connection as the admin API shows it: never its headers or query.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    /// Its name, as `pq.connect(name)` takes it.
    pub name: String,
    /// Its base URL.
    pub base_url: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
}

/// A connection as the data plane caches it: credentials still sealed.
#[derive(Debug, Clone)]
pub struct SealedConnection {
    /// Its base URL.
    pub base_url: String,
    /// `{"headers", "query"}`, sealed.
    pub sealed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
}

fn context(tenant: &str, name: &str) -> String {
    format!("connection {tenant}/{name}")
}

fn check_connection(name: &str, spec: &ConnectionSpec) -> Result<(), String> {
    super::secrets::check_resource_name("connection", name).map_err(|e| e.to_string())?;
    let url = url::Url::parse(&spec.base_url).map_err(|e| format!("base_url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("base_url: an http:// or https:// URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base_url: put credentials in headers or query, not in the URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("base_url: no query or fragment (query parameters go in \"query\")".into());
    }
    for (header, value) in &spec.headers {
        let name = hyper::header::HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("headers: {header:?} is not a header name"))?;
        if matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            return Err(format!("headers: {header:?} is set by pubfn itself"));
        }
        hyper::header::HeaderValue::from_str(value)
            .map_err(|_| format!("headers: the value of {header:?} has control characters"))?;
    }
    Ok(())
}

impl Store {
    /// Replaces the tenant's egress allow-list; gives it back normalised.
    pub async fn set_egress(
        &self,
        tenant: &str,
        entries: &[String],
    ) -> Result<Vec<String>, ControlError> {
        let entries = AllowList::parse(entries)
            .map_err(ControlError::Invalid)?
            .entries();
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.tenants SET egress_allow = $2 WHERE name = $1",
                &[&tenant, &entries],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!("no tenant {tenant:?}")));
        }
        notify(&client, tenant, ChangeKind::Egress).await?;
        Ok(entries)
    }

    /// The tenant's egress allow-list (empty: nothing allowed).
    pub async fn egress(&self, tenant: &str) -> Result<Vec<String>, ControlError> {
        self.client()
            .await?
            .query_opt(
                "SELECT egress_allow FROM pubfn.tenants WHERE name = $1",
                &[&tenant],
            )
            .await?
            .map(|row| row.get(0))
            .ok_or_else(|| ControlError::NotFound(format!("no tenant {tenant:?}")))
    }

    /// The tenant's allow-list, parsed, for the data plane.
    pub async fn egress_policy(&self, tenant: &str) -> Result<AllowList, ControlError> {
        let entries = self.egress(tenant).await?;
        AllowList::parse(&entries).map_err(|e| ControlError::corrupt("egress allow-list", e))
    }

    /// Sets (or replaces) the tenant's connection `name`.
    pub async fn put_connection(
        &self,
        tenant: &str,
        name: &str,
        spec: &ConnectionSpec,
    ) -> Result<ConnectionInfo, ControlError> {
        self.tenant(tenant).await?;
        check_connection(name, spec).map_err(ControlError::Invalid)?;
        let credentials = serde_json::to_vec(&Credentials {
            headers: spec.headers.clone(),
            query: spec.query.clone(),
        })
        .map_err(|e| ControlError::Invalid(e.to_string()))?;
        if credentials.len() > MAX_CONNECTION_SECRET_BYTES {
            return Err(ControlError::Invalid(format!(
                "headers and query over {MAX_CONNECTION_SECRET_BYTES} bytes"
            )));
        }
        let sealed = self.key.seal(&credentials, &context(tenant, name));
        let client = self.client().await?;
        let row = client
            .query_one(
                concat!(
                    "INSERT INTO pubfn.tenant_connections (tenant, name, base_url, sealed) ",
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, name) DO UPDATE SET ",
                    "base_url = EXCLUDED.base_url, sealed = EXCLUDED.sealed, updated_at = now() ",
                    "RETURNING ",
                    ts!("updated_at" AS "updated_at")
                ),
                &[&tenant, &name, &spec.base_url, &sealed],
            )
            .await?;
        notify(&client, tenant, ChangeKind::Egress).await?;
        Ok(ConnectionInfo {
            name: name.to_string(),
            base_url: spec.base_url.clone(),
            updated_at: row.get(0),
        })
    }

    /// The tenant's connections, without their credentials.
    pub async fn connections(&self, tenant: &str) -> Result<Vec<ConnectionInfo>, ControlError> {
        self.tenant(tenant).await?;
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT name, base_url, ",
                    ts!("updated_at" AS "updated_at"),
                    " FROM pubfn.tenant_connections WHERE tenant = $1 ORDER BY name"
                ),
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ConnectionInfo {
                name: r.get(0),
                base_url: r.get(1),
                updated_at: r.get(2),
            })
            .collect())
    }

    /// Deletes the tenant's connection `name`.
    pub async fn delete_connection(&self, tenant: &str, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM pubfn.tenant_connections WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!(
                "tenant {tenant:?} has no connection {name:?}"
            )));
        }
        notify(&client, tenant, ChangeKind::Egress).await
    }

    /// The tenant's connections with their credentials still sealed, for the data plane.
    pub async fn sealed_connections(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, SealedConnection>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, base_url, sealed FROM pubfn.tenant_connections WHERE tenant = $1",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let connection = SealedConnection {
                    base_url: r.get(1),
                    sealed: r.get(2),
                };
                (r.get(0), connection)
            })
            .collect())
    }

    /// Opens a connection of [`Store::sealed_connections`].
    pub fn open_connection(
        &self,
        tenant: &str,
        name: &str,
        connection: &SealedConnection,
    ) -> Result<StoredConnection, ControlError> {
        let plain = self.key.open(&connection.sealed, &context(tenant, name))?;
        let credentials: Credentials = serde_json::from_slice(&plain)
            .map_err(|e| ControlError::corrupt("connection credentials", e))?;
        Ok(StoredConnection {
            base_url: connection.base_url.clone(),
            headers: credentials.headers.into_iter().collect(),
            query: credentials.query.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(base_url: &str) -> ConnectionSpec {
        ConnectionSpec {
            base_url: base_url.into(),
            ..ConnectionSpec::default()
        }
    }

    #[test]
    fn connections_are_checked() {
        assert!(check_connection("crm", &spec("https://api.example.com/v3")).is_ok());
        for (name, bad) in [
            ("crm", spec("ftp://x.example")),
            ("crm", spec("https://user:pw@x.example")),
            ("crm", spec("https://x.example/?key=1")),
            ("crm", spec("not a url")),
            ("", spec("https://x.example")),
            ("a/b", spec("https://x.example")),
        ] {
            assert!(check_connection(name, &bad).is_err(), "{name} {bad:?}");
        }
        let mut headers = spec("https://x.example");
        headers.headers.insert("Host".into(), "evil".into());
        assert!(check_connection("crm", &headers).is_err());
        headers.headers.clear();
        headers.headers.insert("X-Key".into(), "a\nb".into());
        assert!(check_connection("crm", &headers).is_err());
    }
}
