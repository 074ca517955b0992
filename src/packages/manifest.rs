//! A package set: a tenant's modules, wheels and preload list, named by the hash of all three.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackageError;
use super::names::{ReservedNames, check_module_name};

/// Most modules a tenant's preload list may name.
pub const MAX_PRELOAD: usize = 64;

/// Default quota of a tenant's packages, unpacked (operators change it per tenant with
/// `max_package_bytes`).
pub const DEFAULT_QUOTA_BYTES: u64 = 64 << 20;

/// One of the tenant's own modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// SHA-256 of its source, hex: the blob that holds it.
    pub sha256: String,
    /// Bytes of source.
    pub size: u64,
}

/// One installed wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelInfo {
    /// Project name, normalised (`python-dateutil`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Bytes of the `.whl`.
    pub size: u64,
    /// SHA-256 of the `.whl`, hex: the blob that holds it.
    pub sha256: String,
    /// Bytes it unpacks to.
    pub unpacked_bytes: u64,
    /// The top-level modules it installs.
    pub top_level: Vec<String>,
    /// Its `Requires-Dist` lines.
    pub requires: Vec<String>,
}

/// A package set. Immutable once stored; a change makes a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManifest {
    /// The tenant's modules, by dotted name.
    #[serde(default)]
    pub modules: BTreeMap<String, ModuleInfo>,
    /// Wheels, by file name.
    #[serde(default)]
    pub wheels: BTreeMap<String, WheelInfo>,
    /// Modules imported while the tenant's snapshot is built, in this order.
    #[serde(default)]
    pub preload: Vec<String>,
}

impl PackageManifest {
    /// Whether there is nothing in it (the tenant runs on its plain snapshot).
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty() && self.wheels.is_empty() && self.preload.is_empty()
    }

    /// The set's name: SHA-256 of its canonical JSON (maps are sorted), hex.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a manifest serialises");
        hex::encode(Sha256::digest(json))
    }

    /// Bytes the set takes unpacked: what the quota counts.
    pub fn unpacked_bytes(&self) -> u64 {
        let modules: u64 = self.modules.values().map(|m| m.size).sum();
        let wheels: u64 = self.wheels.values().map(|w| w.unpacked_bytes).sum();
        modules + wheels
    }

    /// The blobs it names, sorted.
    pub fn blobs(&self) -> Vec<String> {
        let mut blobs: Vec<String> = self
            .modules
            .values()
            .map(|m| m.sha256.clone())
            .chain(self.wheels.values().map(|w| w.sha256.clone()))
            .collect();
        blobs.sort();
        blobs.dedup();
        blobs
    }

    /// Which of the set's entries installs top-level module `name`, if any.
    pub fn owner_of(&self, name: &str) -> Option<String> {
        let module = self
            .modules
            .keys()
            .find(|m| m.split('.').next() == Some(name))
            .map(|m| format!("module {m:?}"));
        module.or_else(|| {
            self.wheels
                .iter()
                .find(|(_, w)| w.top_level.iter().any(|t| t == name))
                .map(|(filename, _)| format!("wheel {filename}"))
        })
    }

    /// Checks the whole set: names usable and not shadowing the runtime, no two entries
    /// installing the same top-level module, one version of each project, the quota.
    pub fn check(&self, reserved: &ReservedNames, quota: u64) -> Result<(), PackageError> {
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        let mut claim = |top: &str, owner: String| match owners.get(top) {
            Some(other) if *other != owner => Err(PackageError::Name(format!(
                "{owner} installs top-level module {top:?}, which {other} installs already; \
                 remove that first"
            ))),
            _ => {
                owners.insert(top.to_string(), owner);
                Ok(())
            }
        };
        for name in self.modules.keys() {
            check_module_name("module", name)?;
            let top = name.split('.').next().unwrap_or(name);
            reserved.check(&format!("module {name:?}"), top)?;
            claim(top, "the tenant's modules".to_string())?;
        }
        let mut projects: BTreeMap<&str, &str> = BTreeMap::new();
        for (filename, wheel) in &self.wheels {
            if let Some(other) = projects.insert(&wheel.name, filename) {
                return Err(PackageError::Name(format!(
                    "wheel {filename}: {other} is already installed for project {:?}; remove it \
                     first",
                    wheel.name
                )));
            }
            for top in &wheel.top_level {
                reserved.check(&format!("wheel {filename}"), top)?;
                claim(top, format!("wheel {filename}"))?;
            }
        }
        if self.preload.len() > MAX_PRELOAD {
            return Err(PackageError::Name(format!(
                "preload: at most {MAX_PRELOAD} modules, not {}",
                self.preload.len()
            )));
        }
        for name in &self.preload {
            check_module_name("preload", name)?;
        }
        let needed = self.unpacked_bytes();
        if needed > quota {
            return Err(PackageError::Quota { needed, quota });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(name: &str, top: &[&str], unpacked: u64) -> WheelInfo {
        WheelInfo {
            name: name.into(),
            version: "1.0".into(),
            size: 10,
            sha256: format!("{name}-sha"),
            unpacked_bytes: unpacked,
            top_level: top.iter().map(|t| t.to_string()).collect(),
            requires: vec![],
        }
    }

    fn reserved() -> ReservedNames {
        ReservedNames::new(["json".to_string()], ["pq".to_string()])
    }

    #[test]
    fn the_hash_names_the_content_and_nothing_else() {
        let mut a = PackageManifest::default();
        a.wheels
            .insert("x-1.0-py3-none-any.whl".into(), wheel("x", &["x"], 5));
        let b = a.clone();
        assert_eq!(a.hash(), b.hash());
        let mut c = a.clone();
        c.preload.push("x".into());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash().len(), 64);
    }

    #[test]
    fn clashes_shadowing_and_the_quota_are_refused() {
        let mut set = PackageManifest::default();
        set.wheels
            .insert("a-1.0-py3-none-any.whl".into(), wheel("a", &["shared"], 10));
        set.check(&reserved(), 100).unwrap();

        let mut clash = set.clone();
        clash
            .wheels
            .insert("b-1.0-py3-none-any.whl".into(), wheel("b", &["shared"], 10));
        assert!(clash.check(&reserved(), 100).is_err());

        let mut module_clash = set.clone();
        module_clash.modules.insert(
            "shared.util".into(),
            ModuleInfo {
                sha256: "s".into(),
                size: 1,
            },
        );
        assert!(module_clash.check(&reserved(), 100).is_err());

        let mut two_versions = set.clone();
        two_versions
            .wheels
            .insert("a-2.0-py3-none-any.whl".into(), wheel("a", &["other"], 10));
        assert!(two_versions.check(&reserved(), 100).is_err());

        let mut shadow = set.clone();
        shadow
            .wheels
            .insert("j-1.0-py3-none-any.whl".into(), wheel("j", &["json"], 1));
        assert!(shadow.check(&reserved(), 100).is_err());

        match set.check(&reserved(), 9) {
            Err(PackageError::Quota {
                needed: 10,
                quota: 9,
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
