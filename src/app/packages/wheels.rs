//! The tenant's pure-Python wheels: uploaded, inspected whole off the async threads, listed.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::super::{App, AppError, Caller};
use super::not_found;
use crate::packages::wheel::{self, WheelLimits};
use crate::packages::{PackageError, PackageManifest, WheelInfo};

/// A wheel as listed.
#[derive(Debug, Clone, Serialize)]
pub struct WheelListing {
    /// Its file name.
    pub filename: String,
    /// Everything known of it.
    #[serde(flatten)]
    pub info: WheelInfo,
}

/// Every wheel of `manifest`, as listed.
pub(super) fn wheel_listings(manifest: &PackageManifest) -> Vec<WheelListing> {
    manifest
        .wheels
        .iter()
        .map(|(filename, info)| WheelListing {
            filename: filename.clone(),
            info: info.clone(),
        })
        .collect()
}

impl App {
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
}
