//! A package set laid out on disk, as the sandbox preopens it (read-only) for the guest:
//!
//! ```text
//! <dir>/site/          on the guest's sys.path: the tenant's modules and the wheels' files
//! <dir>/preload.json   ["pydantic", "dateutil.parser"]: imported into the snapshot
//! ```
//!
//! Directories are named by the set's hash and written once, atomically (a temporary directory
//! renamed into place), so a reader never sees half a set.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::manifest::PackageManifest;
use super::wheel::{self, WheelLimits};

/// The folder of a set's directory that goes on the guest's `sys.path`.
pub const SITE_DIR: &str = "site";

/// The file naming the modules to import into the snapshot.
pub const PRELOAD_FILE: &str = "preload.json";

/// The relative path of module `name` within `site/`: `a.b` is `a/b.py`, or `a/b/__init__.py`
/// when the set also has modules below `a.b`.
pub fn module_path(manifest: &PackageManifest, name: &str) -> PathBuf {
    let prefix = format!("{name}.");
    let is_package = manifest.modules.keys().any(|m| m.starts_with(&prefix));
    let mut path: PathBuf = name.split('.').collect();
    if is_package {
        path.push("__init__.py");
    } else {
        path.set_extension("py");
    }
    path
}

/// Where set `hash` lives under `root`, unpacking it there first if it is not there yet.
/// `blobs` holds every blob the manifest names, by SHA-256.
pub fn install(
    root: &Path,
    hash: &str,
    manifest: &PackageManifest,
    blobs: &HashMap<String, Vec<u8>>,
) -> io::Result<PathBuf> {
    // The name comes back from the metadata database: it names a directory only if it is
    // what a hash looks like.
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(io::Error::other(format!(
            "{hash:?} is not a package set's hash"
        )));
    }
    let dir = root.join(hash);
    if dir.join(PRELOAD_FILE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{hash}."))
        .tempdir_in(root)?;
    write_set(tmp.path(), manifest, blobs)?;
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another task installed the same set meanwhile: theirs is as good as ours.
        if !dir.join(PRELOAD_FILE).is_file() {
            return Err(e);
        }
    }
    Ok(dir)
}

fn write_set(
    dir: &Path,
    manifest: &PackageManifest,
    blobs: &HashMap<String, Vec<u8>>,
) -> io::Result<()> {
    let blob = |sha: &str| {
        blobs
            .get(sha)
            .ok_or_else(|| io::Error::other(format!("package blob {sha} is missing")))
    };
    let site = dir.join(SITE_DIR);
    std::fs::create_dir_all(&site)?;
    for (name, module) in &manifest.modules {
        write_file(&site, &module_path(manifest, name), blob(&module.sha256)?)?;
    }
    for (filename, info) in &manifest.wheels {
        // Checked again: the bytes come back from the database, and the check is what
        // guarantees that every path stays inside `site/`.
        let limits = WheelLimits {
            max_unpacked_bytes: info.unpacked_bytes.max(1),
            ..WheelLimits::default()
        };
        let wheel = wheel::inspect(filename, blob(&info.sha256)?, &limits)
            .map_err(|e| io::Error::other(format!("stored wheel {filename}: {e}")))?;
        for file in &wheel.files {
            write_file(&site, Path::new(&file.path), &file.contents)?;
        }
    }
    let preload = serde_json::to_vec(&manifest.preload).expect("names serialise");
    write_file(dir, Path::new(PRELOAD_FILE), &preload)
}

fn write_file(root: &Path, relative: &Path, contents: &[u8]) -> io::Result<()> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, contents)?;
    let mut permissions = std::fs::metadata(&path)?.permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&path, permissions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::ModuleInfo;

    fn module(source: &str) -> (ModuleInfo, String) {
        use sha2::{Digest, Sha256};
        let sha = hex::encode(Sha256::digest(source));
        (
            ModuleInfo {
                sha256: sha.clone(),
                size: source.len() as u64,
            },
            sha,
        )
    }

    #[test]
    fn modules_become_files_and_packages_and_the_set_is_written_once() {
        let mut manifest = PackageManifest::default();
        let mut blobs = HashMap::new();
        for (name, source) in [
            ("helpers", "X = 1\n"),
            ("helpers.text", "Y = 2\n"),
            ("solo", ""),
        ] {
            let (info, sha) = module(source);
            blobs.insert(sha, source.as_bytes().to_vec());
            manifest.modules.insert(name.into(), info);
        }
        manifest.preload.push("helpers.text".into());
        let root = tempfile::tempdir().unwrap();
        let dir = install(root.path(), &manifest.hash(), &manifest, &blobs).unwrap();
        let site = dir.join(SITE_DIR);
        assert_eq!(
            std::fs::read_to_string(site.join("helpers/__init__.py")).unwrap(),
            "X = 1\n"
        );
        assert_eq!(
            std::fs::read_to_string(site.join("helpers/text.py")).unwrap(),
            "Y = 2\n"
        );
        assert!(site.join("solo.py").is_file());
        assert_eq!(
            std::fs::read_to_string(dir.join(PRELOAD_FILE)).unwrap(),
            r#"["helpers.text"]"#
        );
        // Installed already: nothing is read again (no blobs needed).
        let again = install(root.path(), &manifest.hash(), &manifest, &HashMap::new()).unwrap();
        assert_eq!(again, dir);
    }

    #[test]
    fn a_missing_blob_installs_nothing() {
        let mut manifest = PackageManifest::default();
        manifest.modules.insert("m".into(), module("x = 1").0);
        let root = tempfile::tempdir().unwrap();
        assert!(install(root.path(), &manifest.hash(), &manifest, &HashMap::new()).is_err());
        assert!(!root.path().join(manifest.hash()).exists());
        // Nor does a name that is not a hash, whatever the database says.
        for name in ["../escape", "", &"A".repeat(64)] {
            assert!(install(root.path(), name, &manifest, &HashMap::new()).is_err());
        }
    }
}
