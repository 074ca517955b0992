//! Reading and checking one uploaded `.whl`.
//!
//! A wheel is a zip archive written by a hostile tenant: every name, size, header and byte in
//! it is treated as an attack. [`inspect`] accepts only pure-Python wheels (`py3-none-any`)
//! whose every file is vouched for by `RECORD`, and returns their contents in memory under
//! paths that are safe to join below one site-packages directory. Nothing touches the disk.

use std::collections::{BTreeSet, HashMap};
use std::io::Cursor;

use zip::ZipArchive;

mod entries;
mod filename;
mod layout;
mod metadata;
mod native;
mod record;

use entries::{list_entries, read_entry};
use filename::{normalize_name, parse_filename};
use layout::{Layout, check_no_collisions};
use metadata::{check_wheel_file, read_metadata};
use native::{check_native_contents, check_native_name};
use record::check_record;

/// Caps on what one wheel may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct WheelLimits {
    /// Most bytes all entries together may decompress to.
    pub max_unpacked_bytes: u64,
    /// Most entries (files and directories) the archive may hold.
    pub max_files: usize,
    /// Highest uncompressed/compressed ratio, for each entry and for the whole archive: a
    /// higher one is a zip bomb.
    pub max_ratio: u64,
}

/// Sizes up to which the compression ratio is not checked: no bomb fits in them.
const RATIO_FLOOR_BYTES: u64 = 64 << 10;

impl Default for WheelLimits {
    /// 64 MiB unpacked, 20,000 entries, ratio 200.
    fn default() -> Self {
        WheelLimits {
            max_unpacked_bytes: 64 * 1024 * 1024,
            max_files: 20_000,
            max_ratio: 200,
        }
    }
}

/// A checked wheel, its files in memory.
#[derive(Debug, Clone)]
pub struct Wheel {
    /// The file name it was checked as.
    pub filename: String,
    /// The project name from the file name, PEP 503-normalised (`my_pkg` -> `my-pkg`).
    pub name: String,
    /// The version from the file name, as written there.
    pub version: String,
    /// What all its entries decompress to: the figure [`WheelLimits::max_unpacked_bytes`]
    /// caps, so checking it again with this as the cap passes.
    pub unpacked_bytes: u64,
    /// Importable top-level names it installs (`foo.py` and `foo/...` give `foo`), sorted.
    pub top_level: Vec<String>,
    /// `Requires-Dist` values from `METADATA`, verbatim, in order.
    pub requires: Vec<String>,
    /// What to install, paths relative to site-packages, sorted by path.
    pub files: Vec<WheelFile>,
}

/// One file to install.
#[derive(Debug, Clone)]
pub struct WheelFile {
    /// Relative `/`-separated path: no `..`, `.`, empty or absolute parts, no backslashes.
    pub path: String,
    /// The file's bytes, their hash checked against `RECORD`.
    pub contents: Vec<u8>,
}

/// Why a wheel was refused: always the tenant's input, each message naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The file name is not `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
    #[error("invalid wheel file name {filename:?}: {reason}")]
    Filename {
        /// The file name given.
        filename: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The wheel is built for a particular interpreter, ABI or platform.
    #[error(
        "the wheel is tagged {tag:?}: only pure-Python wheels (py3-none-any) can be installed, \
         because the sandbox runs no native code"
    )]
    NotPurePython {
        /// The offending `{python}-{abi}-{platform}` tag.
        tag: String,
    },
    /// The bytes are not a zip archive that can be read unambiguously.
    #[error("not a valid wheel (zip) archive: {0}")]
    Archive(String),
    /// The wheel exceeds an entry-count or compression-ratio limit.
    #[error("wheel too large: {0}")]
    TooLarge(String),
    /// Its files unpack to more than `max_unpacked_bytes` (the tenant's package quota).
    #[error(
        "its files unpack to more than {limit} bytes, the tenant's package quota \
         (max_package_bytes)"
    )]
    Unpacked {
        /// The limit it exceeds.
        limit: u64,
    },
    /// An archive entry's path or type could escape or confuse the install directory.
    #[error("unsafe entry {path:?}: {reason}")]
    UnsafePath {
        /// The entry's name, as far as it could be read.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file is native code.
    #[error(
        "{path:?} is {reason}: only pure-Python wheels (py3-none-any) can be installed, because \
         the sandbox runs no native code"
    )]
    NativeCode {
        /// The file.
        path: String,
        /// What it looks like.
        reason: String,
    },
    /// A file would land somewhere other than a Python module, package or the `.dist-info`.
    #[error("{path:?} cannot be installed: {reason}")]
    NotInstallable {
        /// The file, as named in the archive.
        path: String,
        /// Why not.
        reason: String,
    },
    /// The `.dist-info` directory is missing, mismatched or malformed.
    #[error("invalid wheel metadata {path:?}: {reason}")]
    Metadata {
        /// The file or directory at fault.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `RECORD` does not vouch for exactly the files in the archive.
    #[error("RECORD does not match the wheel at {path:?}: {reason}")]
    Record {
        /// The file whose entry is wrong or missing.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One regular file of the archive, before its contents are read.
struct Entry {
    index: usize,
    path: String,
    size: u64,
}

/// Checks `bytes` as the wheel `filename`.
///
/// Everything is checked before anything is returned: a wheel is accepted whole or not at all.
///
/// # Errors
///
/// A [`WheelError`] naming the first thing found wrong, worded for the tenant.
pub fn inspect(filename: &str, bytes: &[u8], limits: &WheelLimits) -> Result<Wheel, WheelError> {
    let (escaped_name, version) = parse_filename(filename)?;
    let name = normalize_name(escaped_name);

    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(archive_error)?;
    // A wheel starts with its first entry; anything before it (a stub executable, another
    // format of a polyglot file) is a different reading of the same bytes.
    if archive.offset() != 0 {
        return Err(WheelError::Archive(
            "there is data before the zip archive".into(),
        ));
    }
    // The zip library keeps one entry per name; a second one would be what another unzip
    // tool extracts instead of the one we checked.
    if archive.has_duplicate_names() {
        return Err(WheelError::Archive("two entries have the same name".into()));
    }
    if archive.len() > limits.max_files {
        return Err(WheelError::TooLarge(format!(
            "{} entries, at most {} allowed",
            archive.len(),
            limits.max_files
        )));
    }
    let (entries, directories) = list_entries(&archive, bytes.len(), limits)?;
    // Local headers that disagree with the central directory, overlapping entries and
    // entries hidden from the central directory all mean two tools would see two wheels.
    archive
        .validate_header_consistency()
        .map_err(archive_error)?;

    // Everything that can be decided from names alone, before decompressing anything.
    let layout = Layout::find(&name, version, &entries, &directories)?;
    let mut installs = Vec::with_capacity(entries.len());
    for entry in &entries {
        check_native_name(&entry.path)?;
        installs.push(layout.install_path(&entry.path)?);
    }
    check_no_collisions(installs.iter().flatten().map(String::as_str))?;

    let mut contents = Vec::with_capacity(entries.len());
    for entry in &entries {
        let data = read_entry(&mut archive, entry)?;
        check_native_contents(&entry.path, &data)?;
        contents.push(data);
    }
    let by_path: HashMap<&str, &[u8]> = entries
        .iter()
        .zip(&contents)
        .map(|(e, c)| (e.path.as_str(), c.as_slice()))
        .collect();

    check_record(&layout, &by_path)?;
    check_wheel_file(&layout, &by_path)?;
    let requires = read_metadata(&layout, &name, &by_path)?;

    let mut top_level = BTreeSet::new();
    let mut files = Vec::with_capacity(entries.len());
    for (install, data) in installs.into_iter().zip(contents) {
        let Some(path) = install else { continue };
        if let Some(top) = layout.top_level_name(&path) {
            top_level.insert(top.to_owned());
        }
        files.push(WheelFile {
            path,
            contents: data,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let unpacked_bytes = entries.iter().map(|e| e.size).sum();

    Ok(Wheel {
        filename: filename.to_owned(),
        name,
        version: version.to_owned(),
        unpacked_bytes,
        top_level: top_level.into_iter().collect(),
        requires,
        files,
    })
}

/// A zip library error, as the tenant's archive error.
fn archive_error(e: zip::result::ZipError) -> WheelError {
    WheelError::Archive(e.to_string())
}

#[cfg(test)]
mod tests;
