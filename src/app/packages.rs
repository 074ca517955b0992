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
use sha2::{Digest, Sha256};

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::store::CurrentPackages;
use crate::packages::wheel::{self, WheelLimits};
use crate::packages::{ModuleInfo, PackageError, PackageManifest, WheelInfo, install};
use crate::sandbox::{Limits, PackageSet, SandboxError, Script};

/// Largest module source, in bytes.
pub const MAX_MODULE_BYTES: usize = 1 << 20;

/// A module as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleListing {
    /// Its dotted name.
    pub name: String,
    /// SHA-256 of its source, hex.
    pub sha256: String,
    /// Bytes of source.
    pub size: u64,
    /// Its source (when one module is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A wheel as listed.
#[derive(Debug, Clone, Serialize)]
pub struct WheelListing {
    /// Its file name.
    pub filename: String,
    /// Everything known of it.
    #[serde(flatten)]
    pub info: WheelInfo,
}

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

fn module_listing(name: &str, info: &ModuleInfo) -> ModuleListing {
    ModuleListing {
        name: name.to_string(),
        sha256: info.sha256.clone(),
        size: info.size,
        source: None,
    }
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

    /// Adds or replaces module `name` (dotted names make packages). A syntax error is refused
    /// with its line and column, as a script's is.
    pub async fn put_module(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        source: String,
    ) -> Result<ModuleListing, AppError> {
        caller.may_manage(tenant)?;
        crate::packages::names::check_module_name("module", name)?;
        if source.len() > MAX_MODULE_BYTES {
            return Err(AppError::Invalid(format!(
                "module {name:?}: at most {MAX_MODULE_BYTES} bytes of source"
            )));
        }
        self.check_syntax(tenant, &source).await?;
        let sha256 = hex::encode(Sha256::digest(source.as_bytes()));
        let info = ModuleInfo {
            sha256: sha256.clone(),
            size: source.len() as u64,
        };
        let listing = module_listing(name, &info);
        self.change_packages(tenant, vec![(sha256, source.into_bytes())], |m| {
            m.modules.insert(name.to_string(), info);
            Ok(())
        })
        .await?;
        Ok(listing)
    }

    /// Module `name` with its source.
    pub async fn module(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<ModuleListing, AppError> {
        caller.may_manage(tenant)?;
        let current = self.store.current_packages(tenant).await?;
        let info = current
            .manifest
            .modules
            .get(name)
            .ok_or_else(|| not_found("module", name))?;
        let blobs = self
            .store
            .package_blobs(tenant, std::slice::from_ref(&info.sha256))
            .await?;
        let source = blobs
            .get(&info.sha256)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        Ok(ModuleListing {
            source,
            ..module_listing(name, info)
        })
    }

    /// Removes module `name`.
    pub async fn delete_module(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.change_packages(tenant, vec![], |m| {
            m.modules
                .remove(name)
                .map(drop)
                .ok_or_else(|| not_found("module", name))
        })
        .await
    }

    /// Installs the wheel `filename`: pure Python only, checked whole (paths, RECORD hashes,
    /// size and ratio caps, no native code) before anything is stored. It replaces an
    /// installed version of the same project.
    pub async fn put_wheel(
        &self,
        caller: &Caller,
        tenant: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<WheelListing, AppError> {
        caller.may_manage(tenant)?;
        let quota = self.store.tenant(tenant).await?.limits.package_quota();
        // One wheel may take the whole quota; the set's check counts it with the rest.
        let limits = WheelLimits {
            max_unpacked_bytes: quota,
            ..WheelLimits::default()
        };
        let checked = {
            let (filename, bytes) = (filename.to_string(), bytes.clone());
            tokio::task::spawn_blocking(move || wheel::inspect(&filename, &bytes, &limits))
                .await
                .map_err(|e| AppError::host("checking a wheel", e))?
        }
        .map_err(|source| PackageError::Wheel {
            filename: filename.to_string(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let info = WheelInfo {
            name: checked.name,
            version: checked.version,
            size: bytes.len() as u64,
            sha256: sha256.clone(),
            unpacked_bytes: checked.unpacked_bytes,
            top_level: checked.top_level,
            requires: checked.requires,
        };
        let listing = WheelListing {
            filename: filename.to_string(),
            info: info.clone(),
        };
        self.change_packages(tenant, vec![(sha256, bytes)], |m| {
            // Another version of the same project is replaced: an upgrade, in one change.
            m.wheels.retain(|_, w| w.name != info.name);
            m.wheels.insert(filename.to_string(), info);
            Ok(())
        })
        .await?;
        Ok(listing)
    }

    /// The tenant's wheels.
    pub async fn wheels(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<WheelListing>, AppError> {
        caller.may_manage(tenant)?;
        Ok(wheel_listings(
            &self.store.current_packages(tenant).await?.manifest,
        ))
    }

    /// The installed wheel `filename`.
    pub async fn wheel(
        &self,
        caller: &Caller,
        tenant: &str,
        filename: &str,
    ) -> Result<WheelListing, AppError> {
        self.wheels(caller, tenant)
            .await?
            .into_iter()
            .find(|w| w.filename == filename)
            .ok_or_else(|| not_found("wheel", filename))
    }

    /// Removes the wheel `filename`.
    pub async fn delete_wheel(
        &self,
        caller: &Caller,
        tenant: &str,
        filename: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.change_packages(tenant, vec![], |m| {
            m.wheels
                .remove(filename)
                .map(drop)
                .ok_or_else(|| not_found("wheel", filename))
        })
        .await
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

fn wheel_listings(manifest: &PackageManifest) -> Vec<WheelListing> {
    manifest
        .wheels
        .iter()
        .map(|(filename, info)| WheelListing {
            filename: filename.clone(),
            info: info.clone(),
        })
        .collect()
}

fn not_found(what: &str, name: &str) -> AppError {
    AppError::Control(crate::control::ControlError::NotFound(format!(
        "no {what} {name:?}"
    )))
}
