//! Tenants' package sets: immutable manifests named by their hash, the blobs they name, the
//! tenant's current set, and the collection of what no longer has a reader.

use std::collections::HashMap;

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;
use crate::packages::PackageManifest;

/// A tenant's current package set: `hash` is `None` when it has none.
#[derive(Debug, Clone, Default)]
pub struct CurrentPackages {
    /// The set's hash.
    pub hash: Option<String>,
    /// What is in it.
    pub manifest: PackageManifest,
}

impl Store {
    /// The tenant's current package set.
    pub async fn current_packages(&self, tenant: &str) -> Result<CurrentPackages, ControlError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT t.package_set, s.manifest FROM pubfn.tenants t
                 LEFT JOIN pubfn.package_sets s ON s.tenant = t.name AND s.hash = t.package_set
                 WHERE t.name = $1",
                &[&tenant],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no tenant {tenant:?}")))?;
        let hash: Option<String> = row.get(0);
        let manifest = match (&hash, row.get::<_, Option<serde_json::Value>>(1)) {
            (None, _) => PackageManifest::default(),
            (Some(_), Some(json)) => manifest_from_json(json)?,
            (Some(hash), None) => {
                return Err(ControlError::corrupt(
                    "package set",
                    format!("tenant {tenant:?} names set {hash}, which is not stored"),
                ));
            }
        };
        Ok(CurrentPackages { hash, manifest })
    }

    /// The hash of the tenant's current package set (`None` without packages, or without the
    /// tenant).
    pub async fn current_package_set(&self, tenant: &str) -> Result<Option<String>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT package_set FROM pubfn.tenants WHERE name = $1",
                &[&tenant],
            )
            .await?;
        Ok(row.and_then(|row| row.get(0)))
    }

    /// Package set `hash` of `tenant`, if stored.
    pub async fn package_set(
        &self,
        tenant: &str,
        hash: &str,
    ) -> Result<Option<PackageManifest>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT manifest FROM pubfn.package_sets WHERE tenant = $1 AND hash = $2",
                &[&tenant, &hash],
            )
            .await?;
        row.map(|row| manifest_from_json(row.get(0))).transpose()
    }

    /// The contents of the tenant's blobs `sha256s`, by SHA-256.
    pub async fn package_blobs(
        &self,
        tenant: &str,
        sha256s: &[String],
    ) -> Result<HashMap<String, Vec<u8>>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT sha256, content FROM pubfn.package_blobs
                 WHERE tenant = $1 AND sha256 = ANY($2)",
                &[&tenant, &sha256s],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Makes `manifest` the tenant's current package set, storing `new_blobs` (SHA-256,
    /// content) it needs, if the current set is still `expected` (else a conflict: another
    /// change came first and this one was checked against what is no longer there). Sets and
    /// blobs that neither the current set nor any endpoint version uses any more are removed.
    /// Returns the new set's hash (`None` for an empty set).
    pub async fn put_packages(
        &self,
        tenant: &str,
        expected: Option<&str>,
        manifest: &PackageManifest,
        new_blobs: &[(String, Vec<u8>)],
    ) -> Result<Option<String>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let current: Option<String> = tx
            .query_opt(
                "SELECT package_set FROM pubfn.tenants WHERE name = $1 FOR UPDATE",
                &[&tenant],
            )
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no tenant {tenant:?}")))?
            .get(0);
        if current.as_deref() != expected {
            return Err(ControlError::Conflict(
                "the tenant's packages changed meanwhile; send the change again".into(),
            ));
        }
        let hash = (!manifest.is_empty()).then(|| manifest.hash());
        if let Some(hash) = &hash {
            for (sha, content) in new_blobs {
                tx.execute(
                    "INSERT INTO pubfn.package_blobs (tenant, sha256, content) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&tenant, sha, content],
                )
                .await?;
            }
            let json = serde_json::to_value(manifest).expect("a manifest serialises");
            tx.execute(
                "INSERT INTO pubfn.package_sets (tenant, hash, manifest, blobs)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&tenant, hash, &json, &manifest.blobs()],
            )
            .await?;
        }
        tx.execute(
            "UPDATE pubfn.tenants SET package_set = $2 WHERE name = $1",
            &[&tenant, &hash],
        )
        .await?;
        tx.execute(
            "DELETE FROM pubfn.package_sets s WHERE s.tenant = $1
               AND s.hash IS DISTINCT FROM $2
               AND NOT EXISTS (SELECT 1 FROM pubfn.endpoint_versions v
                               WHERE v.tenant = $1 AND v.package_set = s.hash)",
            &[&tenant, &hash],
        )
        .await?;
        tx.execute(
            "DELETE FROM pubfn.package_blobs b WHERE b.tenant = $1
               AND NOT EXISTS (SELECT 1 FROM pubfn.package_sets s
                               WHERE s.tenant = $1 AND b.sha256 = ANY(s.blobs))",
            &[&tenant],
        )
        .await?;
        notify(&tx, tenant, ChangeKind::Packages).await?;
        tx.commit().await?;
        Ok(hash)
    }
}

fn manifest_from_json(json: serde_json::Value) -> Result<PackageManifest, ControlError> {
    serde_json::from_value(json).map_err(|e| ControlError::corrupt("package set", e))
}
