//! The tenant's own modules: uploaded as source, checked for syntax, listed and read back.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::super::{App, AppError, Caller};
use super::not_found;
use crate::packages::ModuleInfo;

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

/// Module `name` as listed (without its source).
pub(super) fn module_listing(name: &str, info: &ModuleInfo) -> ModuleListing {
    ModuleListing {
        name: name.to_string(),
        sha256: info.sha256.clone(),
        size: info.size,
        source: None,
    }
}

impl App {
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
}
