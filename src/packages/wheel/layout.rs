//! Where a wheel's files are (its `.dist-info` and `.data` directories) and where each one is
//! installed, relative to site-packages.

use std::collections::{BTreeMap, BTreeSet};

use super::filename::{is_identifier, normalize_name};
use super::{Entry, WheelError};

/// Modules that `site` imports by itself at start-up: code that would run without an import.
const STARTUP_MODULES: &[&str] = &["sitecustomize", "usercustomize"];

/// Where things are in this wheel: its one `.dist-info` directory and its `.data` directory.
pub(super) struct Layout {
    pub(super) dist_info: String,
    pub(super) data: String,
    pub(super) record: String,
    pub(super) signatures: [String; 2],
}

impl Layout {
    /// Finds the `{name}-{version}.dist-info` directory and checks that it matches the file
    /// name and holds the three files every wheel has.
    pub(super) fn find(
        name: &str,
        version: &str,
        entries: &[Entry],
        directories: &[String],
    ) -> Result<Layout, WheelError> {
        // Top-level directories, whether named by an entry of their own or by their files'
        // paths (a file named `x.dist-info` is a file, and refused later).
        let tops: BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.path.split_once('/').map(|(top, _)| top))
            .chain(directories.iter().map(|d| d.split('/').next().unwrap_or(d)))
            .filter(|top| top.ends_with(".dist-info"))
            .collect();
        let mut found = tops.into_iter();
        let (Some(dist_info), None) = (found.next(), found.next()) else {
            return Err(WheelError::Metadata {
                path: format!("{name}-{version}.dist-info"),
                reason: "a wheel must have exactly one top-level .dist-info directory".into(),
            });
        };
        let stem = dist_info.strip_suffix(".dist-info").unwrap_or(dist_info);
        let matches = stem
            .split_once('-')
            .is_some_and(|(n, v)| normalize_name(n) == name && v == version);
        if !matches {
            return Err(WheelError::Metadata {
                path: dist_info.to_owned(),
                reason: format!(
                    "does not match the file name (project {name:?}, version {version:?})"
                ),
            });
        }
        let layout = Layout {
            dist_info: dist_info.to_owned(),
            data: format!("{stem}.data"),
            record: format!("{dist_info}/RECORD"),
            signatures: [
                format!("{dist_info}/RECORD.jws"),
                format!("{dist_info}/RECORD.p7s"),
            ],
        };
        for file in ["WHEEL", "METADATA", "RECORD"] {
            let path = layout.meta(file);
            if !entries.iter().any(|e| e.path == path) {
                return Err(WheelError::Metadata {
                    path,
                    reason: "is missing".into(),
                });
            }
        }
        Ok(layout)
    }

    /// The path of a file in the `.dist-info` directory.
    pub(super) fn meta(&self, file: &str) -> String {
        format!("{}/{file}", self.dist_info)
    }

    /// Whether `path` is one of RECORD's signatures: vouched for by nothing, installed nowhere.
    pub(super) fn is_signature(&self, path: &str) -> bool {
        self.signatures.iter().any(|s| s == path)
    }

    /// Where the archive's file `path` is installed, relative to site-packages (`None`: not
    /// installed), or why it cannot be.
    pub(super) fn install_path(&self, path: &str) -> Result<Option<String>, WheelError> {
        let refuse = |reason: &str| WheelError::NotInstallable {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let (top, rest) = path.split_once('/').unwrap_or((path, ""));
        if top == self.dist_info && !rest.is_empty() {
            return Ok((!self.is_signature(path)).then(|| path.to_owned()));
        }
        let installed = if top == self.data && !rest.is_empty() {
            match rest.split_once('/') {
                Some(("purelib" | "platlib", inner)) => inner,
                Some(("scripts", _)) => return Err(refuse("console scripts are not supported")),
                Some(("headers", _)) => return Err(refuse("C headers are not supported")),
                Some(("data", _)) => {
                    return Err(refuse("data files outside site-packages are not supported"));
                }
                _ => {
                    return Err(refuse(
                        "only .data/purelib/ and .data/platlib/ are installed",
                    ));
                }
            }
        } else {
            path
        };
        match installed.split_once('/') {
            Some((package, _)) if is_identifier(package) => {}
            Some((package, _)) => {
                return Err(refuse(&format!(
                    "top-level directory {package:?} is not an importable Python package name \
                     (ASCII letters, digits and _)"
                )));
            }
            None if installed.to_ascii_lowercase().ends_with(".pth") => {
                return Err(refuse(".pth files run code at interpreter start-up"));
            }
            None if !self.top_level_name(installed).is_some_and(is_identifier) => {
                return Err(refuse(
                    "only Python modules (<identifier>.py or .pyi) and package directories may \
                     be installed at the top level",
                ));
            }
            None => {}
        }
        if STARTUP_MODULES.contains(&self.top_level_name(installed).unwrap_or_default()) {
            return Err(refuse(
                "site imports this module by itself at interpreter start-up",
            ));
        }
        Ok(Some(installed.to_owned()))
    }

    /// The importable name an installed path provides, if it is outside the `.dist-info`.
    pub(super) fn top_level_name<'p>(&self, installed: &'p str) -> Option<&'p str> {
        match installed.split_once('/') {
            Some((top, _)) if top == self.dist_info => None,
            Some((top, _)) => Some(top),
            None => installed
                .strip_suffix(".py")
                .or_else(|| installed.strip_suffix(".pyi")),
        }
    }
}

/// Refuses two installed files at one path, or a file where another needs a directory; both
/// compared case-insensitively (`.data/purelib/x.py` and `X.py` would be the same file).
pub(super) fn check_no_collisions<'a>(
    paths: impl Iterator<Item = &'a str>,
) -> Result<(), WheelError> {
    let collision = |path: &str, reason: &str| WheelError::UnsafePath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut lowered = BTreeMap::new();
    for path in paths {
        if lowered.insert(path.to_lowercase(), path).is_some() {
            return Err(collision(path, "two files would be installed at this path"));
        }
    }
    // Paths below `x/` sort together right from `x/`: one look-up per file, rather than a set
    // of every parent directory (hundreds per path, for a hostile one).
    for (lower, path) in &lowered {
        let dir = format!("{lower}/");
        if let Some((below, _)) = lowered.range(dir.clone()..).next()
            && below.starts_with(&dir)
        {
            return Err(collision(
                path,
                "a file, but other files would be installed inside it",
            ));
        }
    }
    Ok(())
}
