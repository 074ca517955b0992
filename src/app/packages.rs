//! Tenants' Python packages: their own modules, pure-Python wheels and the preload list.
//!
//! Every change makes a new package set, checked whole before it is stored: names, clashes,
//! quota, and (when it has a preload list) a snapshot build that imports the list, so a module
//! that raises or loops is refused with its traceback and nothing is installed. The set becomes
//! the tenant's current one, which its next deploy (and its drafts) use; deployed versions keep
//! the set they were deployed with.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::store::CurrentPackages;
use crate::packages::{PackageManifest, install};
use crate::sandbox::{Limits, PackageSet, SandboxError, Script};

mod modules;
mod wheels;

use modules::module_listing;
pub use modules::{MAX_MODULE_BYTES, ModuleListing};
pub use wheels::WheelListing;
use wheels::wheel_listings;

/// A tenant's packages at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct PackagesSummary {
    /// The current set's hash (what the next deploy records); `null` without packages.
    pub package_set: Option<String>,
    /// Bytes unpacked, and the quota.
    pub unpacked_bytes: u64,
    /// The tenant's quota.
    pub quota_bytes: u64,
    /// Its modules.
    pub modules: Vec<ModuleListing>,
    /// Its wheels.
    pub wheels: Vec<WheelListing>,
    /// What its snapshot imports.
    pub preload: Vec<String>,
}

impl App {
    /// The tenant's packages: modules, wheels, preload list, and the current set's hash.
    pub async fn packages(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<PackagesSummary, AppError> {
        caller.may_manage(tenant)?;
        let current = self.store.current_packages(tenant).await?;
        let quota_bytes = self.store.tenant(tenant).await?.limits.package_quota();
        let manifest = &current.manifest;
        Ok(PackagesSummary {
            package_set: current.hash.clone(),
            unpacked_bytes: manifest.unpacked_bytes(),
            quota_bytes,
            modules: manifest
                .modules
                .iter()
                .map(|(name, info)| module_listing(name, info))
                .collect(),
            wheels: wheel_listings(manifest),
            preload: manifest.preload.clone(),
        })
    }

    /// Replaces the list of modules imported into the tenant's snapshot; each must import
    /// cleanly within the tenant's CPU limit, or nothing changes.
    pub async fn set_preload(
        &self,
        caller: &Caller,
        tenant: &str,
        modules: Vec<String>,
    ) -> Result<Vec<String>, AppError> {
        caller.may_manage(tenant)?;
        let kept = modules.clone();
        self.change_packages(tenant, vec![], |m| {
            m.preload = modules;
            Ok(())
        })
        .await?;
        Ok(kept)
    }

    /// The modules imported into the tenant's snapshot.
    pub async fn preload(&self, caller: &Caller, tenant: &str) -> Result<Vec<String>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.current_packages(tenant).await?.manifest.preload)
    }

    /// The installed package set `hash` of `tenant`, unpacking it on this node first if needed.
    pub(super) async fn package_set(
        &self,
        tenant: &str,
        hash: &str,
    ) -> Result<Arc<PackageSet>, AppError> {
        let key = format!("{tenant}/{hash}");
        if let Some(set) = self.package_sets.get(&key) {
            return Ok(set.clone());
        }
        let manifest = self.store.package_set(tenant, hash).await?.ok_or_else(|| {
            AppError::host(
                "loading a package set",
                format!("set {hash} of tenant {tenant:?} is not stored"),
            )
        })?;
        let blobs = self.store.package_blobs(tenant, &manifest.blobs()).await?;
        let set = self.install_set(tenant, hash, manifest, blobs).await?;
        self.package_sets.insert(key, set.clone());
        Ok(set)
    }

    async fn install_set(
        &self,
        tenant: &str,
        hash: &str,
        manifest: PackageManifest,
        blobs: HashMap<String, Vec<u8>>,
    ) -> Result<Arc<PackageSet>, AppError> {
        let root = self.sandbox.packages_dir();
        let owned_hash = hash.to_string();
        let preload = manifest.preload.clone();
        let dir = tokio::task::spawn_blocking(move || {
            install::install(&root, &owned_hash, &manifest, &blobs)
        })
        .await
        .map_err(|e| AppError::host("installing packages", e))?
        .map_err(|e| AppError::host("installing packages", e))?;
        let limits = self.store.tenant(tenant).await?.limits;
        Ok(Arc::new(PackageSet {
            hash: hash.to_string(),
            dir,
            preload_ms: limits.cap(Limits::default()).cpu_ms,
            preload,
        }))
    }

    /// The one sequence of every package change: the current set, `edit` applied, the whole
    /// new set checked (and its preload imported in a snapshot build), then stored if no
    /// other change came first.
    async fn change_packages(
        &self,
        tenant: &str,
        new_blobs: Vec<(String, Vec<u8>)>,
        edit: impl FnOnce(&mut PackageManifest) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let CurrentPackages { hash, manifest } = self.store.current_packages(tenant).await?;
        let mut next = manifest.clone();
        edit(&mut next)?;
        let limits = self.store.tenant(tenant).await?.limits;
        next.check(self.sandbox.reserved_module_names(), limits.package_quota())?;
        if !next.preload.is_empty() {
            let mut blobs = self.store.package_blobs(tenant, &next.blobs()).await?;
            blobs.extend(new_blobs.iter().cloned());
            let set = self
                .install_set(tenant, &next.hash(), next.clone(), blobs)
                .await?;
            match self.sandbox.prepare_packages(tenant, set.clone()).await {
                Ok(_) => {}
                Err(SandboxError::Preload { message, traceback }) => {
                    return Err(AppError::Preload { message, traceback });
                }
                Err(e) => return Err(AppError::host("building the tenant's snapshot", e)),
            }
            self.package_sets
                .insert(format!("{tenant}/{}", set.hash), set);
        }
        self.store
            .put_packages(tenant, hash.as_deref(), &next, &new_blobs)
            .await?;
        self.changed(tenant, ChangeKind::Packages).await;
        Ok(())
    }

    /// Compiles `source` in the tenant's sandbox, as a deploy does a script.
    async fn check_syntax(&self, tenant: &str, source: &str) -> Result<(), AppError> {
        self.sandbox
            .check_script(tenant, None, Script::new(source), &Limits::default())
            .await
            .map_err(|e| super::endpoints::compile_error("the module", e))
    }
}

fn not_found(what: &str, name: &str) -> AppError {
    AppError::Control(crate::control::ControlError::NotFound(format!(
        "no {what} {name:?}"
    )))
}
