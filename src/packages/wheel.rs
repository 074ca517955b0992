//! Reading and checking one uploaded `.whl`.
//!
//! A wheel is a zip archive written by a hostile tenant: every name, size, header and byte in
//! it is treated as an attack. [`inspect`] accepts only pure-Python wheels (`py3-none-any`)
//! whose every file is vouched for by `RECORD`, and returns their contents in memory under
//! paths that are safe to join below one site-packages directory. Nothing touches the disk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Cursor, Read};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

/// Longest wheel file name accepted.
const MAX_FILENAME_LEN: usize = 200;
/// Longest path inside a wheel accepted.
const MAX_PATH_LEN: usize = 512;
/// Longest single path component: Linux's `NAME_MAX`, so unpacking cannot fail half-way.
const MAX_COMPONENT_LEN: usize = 255;

/// Extensions of native code that no pure-Python wheel needs (compared lowercased).
const NATIVE_EXTENSIONS: &[&str] = &[".so", ".pyd", ".dylib", ".dll", ".a", ".o", ".exe", ".wasm"];
/// Magic numbers of executable formats: ELF, Mach-O (both byte orders, 32/64-bit, fat) and wasm.
const NATIVE_MAGICS: &[(&[u8], &str)] = &[
    (b"\x7fELF", "an ELF binary"),
    (b"\xfe\xed\xfa\xce", "a Mach-O binary"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O binary"),
    (b"\xce\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xca\xfe\xba\xbe", "a universal Mach-O binary"),
    (b"\xca\xfe\xba\xbf", "a universal Mach-O binary"),
    (b"\0asm", "a WebAssembly module"),
];
/// Text files that may well start with the letters "MZ" without being DOS/Windows executables.
const TEXT_EXTENSIONS: &[&str] = &[".py", ".pyi", ".txt", ".md", ".rst", ".json", ".csv"];
/// Most `Requires-Dist` headers accepted: real projects have tens, and each costs memory.
const MAX_REQUIRES: usize = 1000;
/// Modules that `site` imports by itself at start-up: code that would run without an import.
const STARTUP_MODULES: &[&str] = &["sitecustomize", "usercustomize"];

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

/// Splits a PEP 427 file name into its (escaped) project name and version, refusing any tag
/// other than pure Python.
fn parse_filename(filename: &str) -> Result<(&str, &str), WheelError> {
    let bad = |reason: &str| WheelError::Filename {
        filename: filename.to_owned(),
        reason: reason.to_owned(),
    };
    if filename.len() > MAX_FILENAME_LEN {
        return Err(bad(&format!("longer than {MAX_FILENAME_LEN} bytes")));
    }
    if filename.contains(['/', '\\']) || filename.chars().any(char::is_control) {
        return Err(bad(
            "must be a plain file name, without slashes or control characters",
        ));
    }
    let Some(stem) = filename.strip_suffix(".whl") else {
        return Err(bad("must end with .whl"));
    };
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, tags) = match parts[..] {
        [name, version, python, abi, platform] => (name, version, [python, abi, platform]),
        [name, version, build, python, abi, platform] => {
            if !build.starts_with(|c: char| c.is_ascii_digit())
                || !build
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                return Err(bad("the build tag must start with a digit"));
            }
            (name, version, [python, abi, platform])
        }
        _ => {
            return Err(bad(
                "must be {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl",
            ));
        }
    };
    let alnum_ends = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !alnum_ends(name)
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._".contains(&b))
    {
        return Err(bad(&format!("{name:?} is not a valid project name")));
    }
    if !alnum_ends(version)
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+!".contains(&b))
    {
        return Err(bad(&format!("{version:?} is not a valid version")));
    }
    let [python, abi, platform] = tags;
    let pythons_ok = python.split('.').all(|t| t == "py2" || t == "py3")
        && python.split('.').any(|t| t == "py3");
    if !pythons_ok || abi != "none" || platform != "any" {
        return Err(WheelError::NotPurePython {
            tag: format!("{python}-{abi}-{platform}"),
        });
    }
    Ok((name, version))
}

/// PEP 503 normalisation: lowercase, each run of `-`, `_` and `.` becomes one `-`.
fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// ASCII Python identifier: what `import` can name.
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && s.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Reads every central-directory entry's name, type and declared sizes, refusing unsafe ones
/// and zip bombs before anything is decompressed. Returns the regular files and the
/// directories (names without their trailing `/`).
fn list_entries(
    archive: &ZipArchive<Cursor<&[u8]>>,
    archive_len: usize,
    limits: &WheelLimits,
) -> Result<(Vec<Entry>, Vec<String>), WheelError> {
    let mut files = Vec::new();
    let mut directories = Vec::new();
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(archive_error)?;
        let raw = entry.name_raw();
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(WheelError::UnsafePath {
                path: String::from_utf8_lossy(raw).into_owned(),
                reason: "the name is not UTF-8".into(),
            });
        };
        let unsafe_path = |reason: &str| WheelError::UnsafePath {
            path: name.to_owned(),
            reason: reason.to_owned(),
        };
        let attributes = entry.external_attributes();
        // Unix file type in the high half, whatever system the archive claims to come from:
        // extractors that honour it do not all check that first.
        let is_dir = match (attributes >> 16) & 0o170000 {
            0 | 0o100000 => name.ends_with('/'),
            0o040000 => true,
            0o120000 => return Err(unsafe_path("symbolic links are not allowed")),
            _ => {
                return Err(unsafe_path(
                    "only regular files and directories are allowed",
                ));
            }
        };
        // MS-DOS directory bit on a name without `/`: some tools make it a directory.
        if is_dir != name.ends_with('/') || (!is_dir && attributes & 0x10 != 0) {
            return Err(unsafe_path("a directory must be named with a trailing '/'"));
        }
        let path = if is_dir {
            name.strip_suffix('/').unwrap_or(name)
        } else {
            name
        };
        check_path(path).map_err(&unsafe_path)?;
        // Two names that differ only in case are one file on a case-insensitive file system.
        if !seen.insert(path.to_lowercase()) {
            return Err(unsafe_path(
                "another entry has the same path (compared case-insensitively)",
            ));
        }
        if entry.encrypted() {
            return Err(unsafe_path("encrypted entries are not allowed"));
        }
        let method = entry.compression();
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(unsafe_path(&format!(
                "compression method {method:?} is not allowed, only stored or deflated"
            )));
        }
        let (size, compressed) = (entry.size(), entry.compressed_size());
        if is_dir {
            if size != 0 {
                return Err(unsafe_path("a directory entry must be empty"));
            }
            directories.push(path.to_owned());
            continue;
        }
        // `compressed * ratio` is 0 for an empty compressed entry, so any data in it is a bomb.
        // Small files are spared: 20 KB of `=` compresses 500-fold and harms nobody.
        if size > RATIO_FLOOR_BYTES && size > compressed.saturating_mul(limits.max_ratio) {
            return Err(WheelError::TooLarge(format!(
                "{name:?} would expand from {compressed} to {size} bytes, more than {} times \
                 (a zip bomb)",
                limits.max_ratio
            )));
        }
        total = total.saturating_add(size);
        if total > limits.max_unpacked_bytes {
            return Err(WheelError::Unpacked {
                limit: limits.max_unpacked_bytes,
            });
        }
        files.push(Entry {
            index,
            path: name.to_owned(),
            size,
        });
    }
    let archive_len = u64::try_from(archive_len).unwrap_or(u64::MAX);
    if total > RATIO_FLOOR_BYTES && total > archive_len.saturating_mul(limits.max_ratio) {
        return Err(WheelError::TooLarge(format!(
            "the {archive_len}-byte archive would expand to {total} bytes, more than {} times \
             (a zip bomb)",
            limits.max_ratio
        )));
    }
    Ok((files, directories))
}

/// Refuses a path that is not a plain relative path on every file system we might meet.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the name is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return Err("the path is longer than 512 bytes");
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed in paths");
    }
    if path.chars().any(char::is_control) {
        return Err("NUL and control characters are not allowed in paths");
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    // Drive letters (`C:x`) and NTFS alternate streams (`a.py:evil`).
    if path.contains(':') {
        return Err("':' is not allowed in paths");
    }
    for part in path.split('/') {
        match part {
            "" => return Err("empty path components ('//' or a trailing '/') are not allowed"),
            "." => return Err("'.' path components are not allowed"),
            ".." => return Err("'..' path components are not allowed"),
            _ if part.len() > MAX_COMPONENT_LEN => {
                return Err("a path component is longer than 255 bytes");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where things are in this wheel: its one `.dist-info` directory and its `.data` directory.
struct Layout {
    dist_info: String,
    data: String,
    record: String,
    signatures: [String; 2],
}

impl Layout {
    /// Finds the `{name}-{version}.dist-info` directory and checks that it matches the file
    /// name and holds the three files every wheel has.
    fn find(
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
    fn meta(&self, file: &str) -> String {
        format!("{}/{file}", self.dist_info)
    }

    /// Whether `path` is one of RECORD's signatures: vouched for by nothing, installed nowhere.
    fn is_signature(&self, path: &str) -> bool {
        self.signatures.iter().any(|s| s == path)
    }

    /// Where the archive's file `path` is installed, relative to site-packages (`None`: not
    /// installed), or why it cannot be.
    fn install_path(&self, path: &str) -> Result<Option<String>, WheelError> {
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
    fn top_level_name<'p>(&self, installed: &'p str) -> Option<&'p str> {
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
fn check_no_collisions<'a>(paths: impl Iterator<Item = &'a str>) -> Result<(), WheelError> {
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

/// Refuses files named like native code.
fn check_native_name(path: &str) -> Result<(), WheelError> {
    let native = |reason: String| WheelError::NativeCode {
        path: path.to_owned(),
        reason,
    };
    let lower = path.to_ascii_lowercase();
    let file_name = lower.rsplit('/').next().unwrap_or(&lower);
    if let Some(ext) = NATIVE_EXTENSIONS
        .iter()
        .find(|ext| file_name.ends_with(*ext))
    {
        return Err(native(format!("a {ext} file")));
    }
    // Versioned shared libraries: libfoo.so.1, libfoo.so.1.2.3.
    if let Some((_, version)) = file_name.split_once(".so.")
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(native("a shared library".into()));
    }
    Ok(())
}

/// Refuses files whose contents are an executable, whatever they are called.
fn check_native_contents(path: &str, data: &[u8]) -> Result<(), WheelError> {
    let native = |reason: &str| WheelError::NativeCode {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some((_, what)) = NATIVE_MAGICS.iter().find(|(m, _)| data.starts_with(m)) {
        return Err(native(what));
    }
    if data.starts_with(b"MZ") {
        // A PE file says where its "PE\0\0" signature is at offset 0x3c; text that happens to
        // start with "MZ" is refused only where text is not expected.
        let is_pe = data
            .get(0x3c..0x40)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .and_then(|b| usize::try_from(u32::from_le_bytes(b)).ok())
            .and_then(|at| data.get(at..at.checked_add(4)?))
            .is_some_and(|sig| sig == b"PE\0\0");
        let lower = path.to_ascii_lowercase();
        let is_text = TEXT_EXTENSIONS.iter().any(|ext| lower.ends_with(ext));
        if is_pe || !is_text {
            return Err(native("a Windows/DOS executable"));
        }
    }
    Ok(())
}

/// Decompresses one entry, never producing more than its declared (and already capped) size.
fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    entry: &Entry,
) -> Result<Vec<u8>, WheelError> {
    let bad = |reason: String| WheelError::Archive(format!("{:?}: {reason}", entry.path));
    let file = archive
        .by_index(entry.index)
        .map_err(|e| bad(e.to_string()))?;
    // One byte more than declared, to notice a header that understates its data.
    let mut data = Vec::new();
    file.take(entry.size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| bad(e.to_string()))?;
    if u64::try_from(data.len()).ok() != Some(entry.size) {
        return Err(bad(format!(
            "its header declares {} bytes but its data differs",
            entry.size
        )));
    }
    Ok(data)
}

/// Checks that RECORD lists every file of the archive, with its sha256 and size, and nothing
/// else.
fn check_record(layout: &Layout, files: &HashMap<&str, &[u8]>) -> Result<(), WheelError> {
    let record_error = |path: &str, reason: &str| WheelError::Record {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut listed = HashSet::new();
    // Row by row: a hostile RECORD of millions of tiny rows is never held all at once.
    for row in RecordRows::new(utf8(&layout.record, files)?) {
        let row = row.map_err(|reason| record_error(&layout.record, reason))?;
        let [path, hash, size] = row.as_slice() else {
            return Err(record_error(
                &layout.record,
                "every row must have three fields: path,hash,size",
            ));
        };
        let Some((&path, &data)) = files.get_key_value(path.as_str()) else {
            return Err(record_error(path, "listed, but not in the wheel"));
        };
        if !listed.insert(path) {
            return Err(record_error(path, "listed more than once"));
        }
        if hash.is_empty() && (path == layout.record || layout.is_signature(path)) {
            // RECORD cannot hold its own hash; the signatures are made after it.
            continue;
        }
        let Some(digest) = hash.strip_prefix("sha256=") else {
            let algorithm = hash.split_once('=').map_or("none", |(a, _)| a);
            return Err(record_error(
                path,
                &format!("hash algorithm {algorithm:?} is not accepted, only sha256"),
            ));
        };
        if digest.trim_end_matches('=') != URL_SAFE_NO_PAD.encode(Sha256::digest(data)) {
            return Err(record_error(
                path,
                "the sha256 hash does not match the file",
            ));
        }
        if !size.is_empty() && size.parse::<usize>().ok() != Some(data.len()) {
            return Err(record_error(path, "the size does not match the file"));
        }
    }
    let mut unlisted: Vec<&str> = files
        .keys()
        .copied()
        .filter(|p| !listed.contains(p) && *p != layout.record && !layout.is_signature(p))
        .collect();
    unlisted.sort_unstable();
    match unlisted.first() {
        Some(path) => Err(record_error(path, "in the wheel, but not listed")),
        None => Ok(()),
    }
}

/// RECORD's rows, split as Python's `csv` module writes them: `,` between fields, `"` around a
/// field that needs it with `""` for a quote inside, `\n` or `\r\n` between rows; blank lines
/// are skipped. Stricter than `csv` about stray quotes, which no writer produces.
struct RecordRows<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> RecordRows<'a> {
    /// Most fields a row may have: RECORD's three, and no millions of empty ones.
    const MAX_FIELDS: usize = 3;

    fn new(text: &'a str) -> Self {
        RecordRows {
            chars: text.chars().peekable(),
        }
    }
}

impl Iterator for RecordRows<'_> {
    type Item = Result<Vec<String>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut row = Vec::new();
        let mut field = String::new();
        let (mut quoted, mut in_quotes) = (false, false);
        loop {
            let Some(c) = self.chars.next() else {
                if in_quotes {
                    return Some(Err("malformed CSV: a quoted field is not closed"));
                }
                if row.is_empty() && field.is_empty() && !quoted {
                    return None;
                }
                row.push(field);
                return Some(Ok(row));
            };
            if in_quotes {
                match c {
                    '"' if self.chars.peek() == Some(&'"') => {
                        self.chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !quoted => (quoted, in_quotes) = (true, true),
                '"' => return Some(Err("malformed CSV: a stray '\"'")),
                _ if quoted && !matches!(c, ',' | '\r' | '\n') => {
                    return Some(Err("malformed CSV: text after a closing '\"'"));
                }
                ',' if row.len() + 1 >= Self::MAX_FIELDS => {
                    return Some(Err("a row has more than three fields"));
                }
                ',' => {
                    row.push(std::mem::take(&mut field));
                    quoted = false;
                }
                '\r' | '\n' => {
                    if c == '\r' && self.chars.peek() == Some(&'\n') {
                        self.chars.next();
                    }
                    if !row.is_empty() || !field.is_empty() || quoted {
                        row.push(field);
                        return Some(Ok(row));
                    }
                }
                _ => field.push(c),
            }
        }
    }
}

/// Checks `WHEEL`: wheel format 1.x, installed into purelib, and pure-Python tags only.
fn check_wheel_file(layout: &Layout, files: &HashMap<&str, &[u8]>) -> Result<(), WheelError> {
    let path = layout.meta("WHEEL");
    let invalid = |reason: String| WheelError::Metadata {
        path: path.clone(),
        reason,
    };
    let (mut versions, mut purelibs) = (Vec::new(), Vec::new());
    let mut impure_tag = None;
    parse_headers(utf8(&path, files)?, |key, value| {
        if key.eq_ignore_ascii_case("Wheel-Version") {
            versions.push(value.to_owned());
        } else if key.eq_ignore_ascii_case("Root-Is-Purelib") {
            purelibs.push(value.to_owned());
        } else if key.eq_ignore_ascii_case("Tag") && impure_tag.is_none() {
            let pure = matches!(
                value.split('-').collect::<Vec<_>>()[..],
                [python, "none", "any"] if python.split('.').all(|t| t == "py2" || t == "py3")
            );
            impure_tag = (!pure).then(|| value.to_owned());
        }
        Ok(())
    })
    .map_err(&invalid)?;
    let [version] = versions.as_slice() else {
        return Err(invalid("must have exactly one Wheel-Version header".into()));
    };
    let is_1x = version
        .strip_prefix("1.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()));
    if !is_1x {
        return Err(invalid(format!(
            "Wheel-Version {version:?} is not supported, only 1.x"
        )));
    }
    if !matches!(purelibs.as_slice(), [value] if value.eq_ignore_ascii_case("true")) {
        return Err(invalid(
            "must have one Root-Is-Purelib header, and it must be true: only pure-Python wheels \
             can be installed"
                .into(),
        ));
    }
    match impure_tag {
        Some(tag) => Err(WheelError::NotPurePython { tag }),
        None => Ok(()),
    }
}

/// Reads `METADATA`: its `Name` must be the wheel's project, and its `Requires-Dist` values
/// are returned.
fn read_metadata(
    layout: &Layout,
    name: &str,
    files: &HashMap<&str, &[u8]>,
) -> Result<Vec<String>, WheelError> {
    let path = layout.meta("METADATA");
    let invalid = |reason: String| WheelError::Metadata {
        path: path.clone(),
        reason,
    };
    let (mut names, mut requires) = (Vec::new(), Vec::new());
    parse_headers(utf8(&path, files)?, |key, value| {
        if key.eq_ignore_ascii_case("Name") {
            names.push(normalize_name(value));
        } else if key.eq_ignore_ascii_case("Requires-Dist") {
            if requires.len() == MAX_REQUIRES {
                return Err(format!("more than {MAX_REQUIRES} Requires-Dist headers"));
            }
            requires.push(value.to_owned());
        }
        Ok(())
    })
    .map_err(&invalid)?;
    if names != [name] {
        return Err(invalid(format!(
            "must have one Name header naming the project {name:?}"
        )));
    }
    Ok(requires)
}

/// Parses RFC 822-style headers up to the first blank line, calling `each` with every header's
/// name and value; a line starting with whitespace continues the value (joined with a space).
fn parse_headers(
    text: &str,
    mut each: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut current: Option<(&str, String)> = None;
    for (number, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.as_mut() else {
                return Err("the first line is a continuation line".into());
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        if let Some((key, value)) = current.take() {
            each(key, &value)?;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {} is not a 'Name: value' header", number + 1));
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("line {} has an invalid header name", number + 1));
        }
        current = Some((key, value.trim().to_owned()));
    }
    match current {
        Some((key, value)) => each(key, &value),
        None => Ok(()),
    }
}

/// The contents of the metadata file `path` as UTF-8.
fn utf8<'a>(path: &str, files: &HashMap<&str, &'a [u8]>) -> Result<&'a str, WheelError> {
    let data = files.get(path).copied().unwrap_or_default();
    std::str::from_utf8(data).map_err(|_| WheelError::Metadata {
        path: path.to_owned(),
        reason: "is not UTF-8".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    const FILENAME: &str = "demo_pkg-1.0-py3-none-any.whl";
    const DIST: &str = "demo_pkg-1.0.dist-info";
    const WHEEL: &str =
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    const METADATA: &str = "Metadata-Version: 2.1\r\nName: demo-pkg\r\nVersion: 1.0\r\n\
        Requires-Dist: requests (>=2)\r\nRequires-Dist: attrs;\r\n  python_version >= \"3.8\"\r\n\
        \r\nA long description.\r\nRequires-Dist: not-a-header\r\n";

    type Files = Vec<(String, Vec<u8>)>;

    /// Ways to break the RECORD that [`build`] writes.
    #[derive(Default)]
    struct Knobs {
        /// Write no RECORD at all.
        no_record: bool,
        /// Paths left out of RECORD.
        unlisted: Vec<&'static str>,
        /// Paths listed with the hash of other bytes.
        wrong_hash: Vec<&'static str>,
        /// Rows appended as they are.
        extra_rows: Vec<String>,
        /// Hash algorithm written in place of sha256 (the digest stays sha256's).
        algorithm: Option<&'static str>,
        /// Symbolic links added (name, target), not in RECORD.
        symlinks: Vec<(&'static str, &'static str)>,
    }

    /// The dist-info files of a good wheel, and `extra`.
    fn with(extra: &[(&str, &[u8])]) -> Files {
        let mut files: Files = vec![
            (format!("{DIST}/WHEEL"), WHEEL.into()),
            (format!("{DIST}/METADATA"), METADATA.into()),
        ];
        files.extend(extra.iter().map(|(p, c)| (p.to_string(), c.to_vec())));
        files
    }

    /// A good wheel's files: a package, a module and a stub.
    fn good_files() -> Files {
        with(&[
            ("demo_pkg/__init__.py", b"from .util import x\n"),
            ("demo_pkg/util.py", b"x = 1\n"),
            ("demo_pkg/data/table.json", b"{}"),
            ("helper.py", b"def help(): pass\n"),
            ("typed.pyi", b"def f() -> int: ...\n"),
        ])
    }

    /// Zips `files` with a RECORD (broken as `knobs` say) in their .dist-info directory.
    fn build(files: &Files, knobs: &Knobs) -> Vec<u8> {
        let dist = files
            .iter()
            .find_map(|(p, _)| {
                p.split_once(".dist-info/")
                    .map(|(d, _)| format!("{d}.dist-info"))
            })
            .unwrap_or_else(|| DIST.to_string());
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        let mut record = String::new();
        for (path, contents) in files {
            zip.start_file(path.as_str(), options).unwrap();
            zip.write_all(contents).unwrap();
            if knobs.unlisted.contains(&path.as_str()) {
                continue;
            }
            let hashed: &[u8] = if knobs.wrong_hash.contains(&path.as_str()) {
                b"something else"
            } else {
                contents
            };
            let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(hashed));
            let algorithm = knobs.algorithm.unwrap_or("sha256");
            record.push_str(&format!("{path},{algorithm}={digest},{}\n", contents.len()));
        }
        for (name, target) in &knobs.symlinks {
            zip.add_symlink(*name, *target, options).unwrap();
        }
        for row in &knobs.extra_rows {
            record.push_str(row);
            record.push('\n');
        }
        if !knobs.no_record {
            record.push_str(&format!("{dist}/RECORD,,\n"));
            zip.start_file(format!("{dist}/RECORD"), options).unwrap();
            zip.write_all(record.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn check(files: &Files, knobs: &Knobs) -> Result<Wheel, WheelError> {
        inspect(FILENAME, &build(files, knobs), &WheelLimits::default())
    }

    /// Replaces every occurrence of `from` with `to`, both the same length.
    fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
            bytes[at + i..at + i + to.len()].copy_from_slice(to);
            at += i + to.len();
        }
    }

    #[track_caller]
    fn assert_unsafe(result: Result<Wheel, WheelError>, expected: &str) {
        match result {
            Err(e @ WheelError::UnsafePath { .. }) => {
                assert!(e.to_string().contains(expected), "{e}")
            }
            other => panic!("expected an unsafe path error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_wheel_is_read_whole() {
        let bytes = build(&good_files(), &Knobs::default());
        let wheel = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
        assert_eq!(wheel.filename, FILENAME);
        assert_eq!(wheel.name, "demo-pkg");
        assert_eq!(wheel.version, "1.0");
        assert_eq!(wheel.top_level, ["demo_pkg", "helper", "typed"]);
        assert_eq!(
            wheel.requires,
            ["requests (>=2)", "attrs; python_version >= \"3.8\""]
        );
        let paths: Vec<&str> = wheel.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "demo_pkg-1.0.dist-info/METADATA",
                "demo_pkg-1.0.dist-info/RECORD",
                "demo_pkg-1.0.dist-info/WHEEL",
                "demo_pkg/__init__.py",
                "demo_pkg/data/table.json",
                "demo_pkg/util.py",
                "helper.py",
                "typed.pyi",
            ]
        );
        let util = wheel.files.iter().find(|f| f.path == "demo_pkg/util.py");
        assert_eq!(util.unwrap().contents, b"x = 1\n");
        let total: usize = wheel.files.iter().map(|f| f.contents.len()).sum();
        assert_eq!(wheel.unpacked_bytes, total as u64);

        // What the installer does with a stored wheel: its own size is exactly enough.
        let exact = WheelLimits {
            max_unpacked_bytes: wheel.unpacked_bytes,
            ..WheelLimits::default()
        };
        inspect(FILENAME, &bytes, &exact).unwrap();
        let less = WheelLimits {
            max_unpacked_bytes: wheel.unpacked_bytes - 1,
            ..exact
        };
        assert!(matches!(
            inspect(FILENAME, &bytes, &less),
            Err(WheelError::Unpacked { .. })
        ));
    }

    #[test]
    fn explicit_directory_entries_are_skipped() {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default();
        zip.add_directory("demo_pkg/", options).unwrap();
        zip.add_directory(format!("{DIST}/"), options).unwrap();
        let mut record = String::new();
        for (path, contents) in with(&[("demo_pkg/__init__.py", b"")]) {
            zip.start_file(path.as_str(), options).unwrap();
            zip.write_all(&contents).unwrap();
            let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&contents));
            record.push_str(&format!("{path},sha256={digest},{}\n", contents.len()));
        }
        zip.start_file(format!("{DIST}/RECORD"), options).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let wheel = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
        assert_eq!(wheel.top_level, ["demo_pkg"]);
        assert_eq!(wheel.files.len(), 4);
    }

    #[test]
    fn py2_py3_and_build_tags_are_accepted() {
        let bytes = build(&good_files(), &Knobs::default());
        for filename in [
            "demo_pkg-1.0-py2.py3-none-any.whl",
            "demo_pkg-1.0-1-py3-none-any.whl",
            "Demo.Pkg-1.0-py3-none-any.whl",
        ] {
            let wheel = inspect(filename, &bytes, &WheelLimits::default()).unwrap();
            assert_eq!(wheel.name, "demo-pkg");
        }
    }

    #[test]
    fn platform_wheels_are_refused_as_not_pure() {
        let bytes = build(&good_files(), &Knobs::default());
        for filename in [
            "demo_pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
            "demo_pkg-1.0-py3-none-linux_x86_64.whl",
            "demo_pkg-1.0-py3-abi3-any.whl",
            "demo_pkg-1.0-py2-none-any.whl",
            "demo_pkg-1.0-cp313-none-any.whl",
            "demo_pkg-1.0-py3.cp313-none-any.whl",
        ] {
            let err = inspect(filename, &bytes, &WheelLimits::default()).unwrap_err();
            assert!(
                matches!(err, WheelError::NotPurePython { .. }),
                "{filename}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains("only pure-Python wheels (py3-none-any)"),
                "{message}"
            );
            assert!(message.contains("runs no native code"), "{message}");
        }
    }

    #[test]
    fn malformed_filenames_are_refused() {
        let bytes = build(&good_files(), &Knobs::default());
        let long = format!("{}-1.0-py3-none-any.whl", "a".repeat(200));
        for filename in [
            "demo_pkg-1.0-py3-none-any.zip",
            "demo_pkg-py3-none-any.whl",
            "../demo_pkg-1.0-py3-none-any.whl",
            "x/demo_pkg-1.0-py3-none-any.whl",
            "x\\demo_pkg-1.0-py3-none-any.whl",
            "demo_pkg-1.0-py3-none-any.whl\0",
            "demo_pkg-1.0-x-py3-none-any.whl",
            "demo pkg-1.0-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
            long.as_str(),
        ] {
            let err = inspect(filename, &bytes, &WheelLimits::default()).unwrap_err();
            assert!(
                matches!(err, WheelError::Filename { .. }),
                "{filename:?}: {err}"
            );
        }
    }

    #[test]
    fn native_libraries_are_refused_by_name() {
        for path in [
            "demo_pkg/_speedups.so",
            "demo_pkg/_speedups.cpython-313-x86_64-linux-gnu.so",
            "demo_pkg/LIB.PYD",
            "demo_pkg/libfoo.so.1.2",
            "demo_pkg/lib.dylib",
            "demo_pkg/x.dll",
            "demo_pkg/x.a",
            "demo_pkg/x.o",
            "demo_pkg-1.0.dist-info/hidden.so",
        ] {
            let err = check(&with(&[(path, b"not really")]), &Knobs::default()).unwrap_err();
            assert!(
                matches!(err, WheelError::NativeCode { .. }),
                "{path}: {err}"
            );
            assert!(err.to_string().contains("runs no native code"));
        }
    }

    #[test]
    fn native_code_is_refused_by_contents() {
        let mut pe = b"MZ".to_vec();
        pe.resize(0x40, 0);
        pe[0x3c] = 0x40;
        pe.extend_from_slice(b"PE\0\0");
        for (path, contents) in [
            ("demo_pkg/helper", &b"\x7fELF\x02\x01\x01\0\0\0"[..]),
            ("demo_pkg/helper.py", b"\x7fELF\x02\x01\x01\0"),
            ("demo_pkg/lib", b"\xcf\xfa\xed\xfe\x07\0\0\x01"),
            ("demo_pkg/mod.bin", b"\0asm\x01\0\0\0"),
            ("demo_pkg/tool", b"MZ\x90\0"),
            ("demo_pkg/tool.txt", &pe),
        ] {
            let err = check(&with(&[(path, contents)]), &Knobs::default()).unwrap_err();
            assert!(
                matches!(err, WheelError::NativeCode { .. }),
                "{path}: {err}"
            );
        }
        // Text that merely starts with "MZ" is text.
        check(
            &with(&[("demo_pkg/names.txt", b"MZ Smith\n")]),
            &Knobs::default(),
        )
        .unwrap();
    }

    #[test]
    fn paths_that_escape_are_refused() {
        for (path, reason) in [
            ("../evil.py", "'..'"),
            ("demo_pkg/../../evil.py", "'..'"),
            ("/etc/x", "absolute"),
            ("C:/evil.py", "':'"),
            ("demo_pkg\\evil.py", "backslash"),
            ("demo_pkg//evil.py", "empty path component"),
            ("./demo_pkg/evil.py", "'.'"),
            ("demo_pkg/ev\nil.py", "control"),
        ] {
            assert_unsafe(check(&with(&[(path, b"x")]), &Knobs::default()), reason);
        }
        let long = format!("demo_pkg/{}.py", "a/".repeat(260));
        assert_unsafe(
            check(&with(&[(long.as_str(), b"x")]), &Knobs::default()),
            "longer than 512",
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let knobs = Knobs {
            symlinks: vec![("demo_pkg/link.py", "/etc/passwd")],
            ..Knobs::default()
        };
        assert_unsafe(check(&good_files(), &knobs), "symbolic link");
    }

    #[test]
    fn duplicate_paths_are_refused() {
        // The writer refuses a name twice: rename one entry in place, headers and all.
        let files = with(&[("demo_pkg/a.py", b"a = 1\n"), ("demo_pkg/b.py", b"b = 2\n")]);
        let mut bytes = build(&files, &Knobs::default());
        patch(&mut bytes, b"demo_pkg/b.py", b"demo_pkg/a.py");
        let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::Archive(_)), "{err}");
        assert!(err.to_string().contains("same name"), "{err}");

        let files = with(&[("demo_pkg/a.py", b"a = 1\n"), ("DEMO_PKG/A.py", b"b = 2\n")]);
        assert_unsafe(check(&files, &Knobs::default()), "case-insensitively");
    }

    #[test]
    fn paths_that_collide_once_installed_are_refused() {
        let data = "demo_pkg-1.0.data/purelib/demo_pkg/__init__.py";
        let files = with(&[("demo_pkg/__init__.py", b""), (data, b"")]);
        assert_unsafe(check(&files, &Knobs::default()), "two files");
        let file = "demo_pkg-1.0.data/purelib/demo_pkg/sub";
        let files = with(&[("demo_pkg/sub/x.py", b""), (file, b"")]);
        assert_unsafe(check(&files, &Knobs::default()), "inside it");
    }

    #[track_caller]
    fn assert_record(result: Result<Wheel, WheelError>, path: &str, reason: &str) {
        match result {
            Err(WheelError::Record { path: p, reason: r }) => {
                assert_eq!(p, path);
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("expected a RECORD error, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_hash_is_refused() {
        let knobs = Knobs {
            wrong_hash: vec!["demo_pkg/util.py"],
            ..Knobs::default()
        };
        assert_record(
            check(&good_files(), &knobs),
            "demo_pkg/util.py",
            "does not match",
        );
    }

    #[test]
    fn a_wrong_size_is_refused() {
        let knobs = Knobs {
            unlisted: vec!["helper.py"],
            extra_rows: vec![format!(
                "helper.py,sha256={},3",
                URL_SAFE_NO_PAD.encode(Sha256::digest(b"def help(): pass\n"))
            )],
            ..Knobs::default()
        };
        assert_record(check(&good_files(), &knobs), "helper.py", "size");
    }

    #[test]
    fn a_file_missing_from_record_is_refused() {
        let knobs = Knobs {
            unlisted: vec!["helper.py"],
            ..Knobs::default()
        };
        assert_record(check(&good_files(), &knobs), "helper.py", "not listed");
    }

    #[test]
    fn record_naming_a_missing_file_is_refused() {
        let knobs = Knobs {
            extra_rows: vec!["demo_pkg/ghost.py,sha256=AAAA,4".into()],
            ..Knobs::default()
        };
        assert_record(
            check(&good_files(), &knobs),
            "demo_pkg/ghost.py",
            "not in the wheel",
        );
    }

    #[test]
    fn hashes_other_than_sha256_are_refused() {
        for algorithm in ["md5", "sha1"] {
            let knobs = Knobs {
                algorithm: Some(algorithm),
                ..Knobs::default()
            };
            let err = check(&good_files(), &knobs).unwrap_err();
            assert!(err.to_string().contains(algorithm), "{err}");
            assert!(matches!(err, WheelError::Record { .. }), "{err}");
        }
        let knobs = Knobs {
            unlisted: vec!["helper.py"],
            extra_rows: vec!["helper.py,,".into()],
            ..Knobs::default()
        };
        assert_record(check(&good_files(), &knobs), "helper.py", "only sha256");
    }

    #[test]
    fn record_fields_may_be_quoted() {
        let contents = b"v = 1\n";
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(contents));
        let knobs = Knobs {
            unlisted: vec!["demo_pkg/a,\"b\".py"],
            extra_rows: vec![format!(
                "\"demo_pkg/a,\"\"b\"\".py\",\"sha256={digest}\",\"6\"\r"
            )],
            ..Knobs::default()
        };
        let files = with(&[("demo_pkg/a,\"b\".py", contents)]);
        let wheel = check(&files, &knobs).unwrap();
        assert!(wheel.files.iter().any(|f| f.path == "demo_pkg/a,\"b\".py"));
    }

    #[test]
    fn csv_is_split_like_pythons_csv_module() {
        let rows: Vec<Vec<String>> =
            RecordRows::new("a,b,c\r\n\n\"x,\"\"y\",,\"1\"\n\"multi\nline\",2,\n")
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(
            rows,
            [
                vec!["a", "b", "c"],
                vec!["x,\"y", "", "1"],
                vec!["multi\nline", "2", ""],
            ]
        );
        for bad in ["\"open,1,2\n", "a\"b,1,2\n", "\"a\"b,1,2\n", "a,b,c,d\n"] {
            let rows: Result<Vec<_>, _> = RecordRows::new(bad).collect();
            assert!(rows.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_metadata_files_are_refused() {
        for missing in ["WHEEL", "METADATA", "RECORD"] {
            let path = format!("{DIST}/{missing}");
            let files: Files = good_files()
                .into_iter()
                .filter(|(p, _)| *p != path)
                .collect();
            let knobs = Knobs {
                no_record: missing == "RECORD",
                ..Knobs::default()
            };
            match check(&files, &knobs) {
                Err(WheelError::Metadata { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains("missing"));
                }
                other => panic!("{missing}: {other:?}"),
            }
        }
    }

    #[test]
    fn wheel_file_must_say_pure_and_version_1() {
        for wheel in [
            "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n",
            "Wheel-Version: 1.0\n",
            "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
            "Root-Is-Purelib: true\n",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nRoot-Is-Purelib: false\n",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp313-cp313-manylinux_2_17_x86_64\n",
            "no header here\n",
        ] {
            let mut files = good_files();
            files[0].1 = wheel.into();
            let err = check(&files, &Knobs::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    WheelError::Metadata { .. } | WheelError::NotPurePython { .. }
                ),
                "{wheel:?}: {err}"
            );
        }
        let mut files = good_files();
        files[0].1 = b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n".to_vec();
        let err = check(&files, &Knobs::default()).unwrap_err();
        assert!(err.to_string().contains("Root-Is-Purelib"), "{err}");
        files[0].1 = b"wheel-version: 1.9\r\nroot-is-purelib: TRUE\r\n".to_vec();
        check(&files, &Knobs::default()).unwrap();
    }

    #[test]
    fn metadata_must_name_the_project() {
        let mut files = good_files();
        files[1].1 = b"Metadata-Version: 2.1\nName: requests\nVersion: 1.0\n".to_vec();
        let err = check(&files, &Knobs::default()).unwrap_err();
        assert!(matches!(err, WheelError::Metadata { .. }), "{err}");
        files[1].1 = b"Metadata-Version: 2.1\nName: Demo_Pkg\n".to_vec();
        assert!(
            check(&files, &Knobs::default())
                .unwrap()
                .requires
                .is_empty()
        );
    }

    #[test]
    fn a_wheel_too_large_to_unpack_is_refused_before_decompressing() {
        // 100 MiB of zeros deflates to about 100 KiB: each header states the real size.
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (path, contents) in with(&[]) {
            zip.start_file(path.as_str(), options).unwrap();
            zip.write_all(&contents).unwrap();
        }
        zip.start_file("demo_pkg/zeros.py", options).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            zip.write_all(&chunk).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20);
        let limits = WheelLimits {
            max_ratio: u64::MAX,
            ..WheelLimits::default()
        };
        let err = inspect(FILENAME, &bytes, &limits).unwrap_err();
        assert!(err.to_string().contains("67108864"), "{err}");
        let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
    }

    #[test]
    fn a_high_compression_ratio_is_refused() {
        let zeros = vec![0u8; 1 << 20];
        let err = check(&with(&[("demo_pkg/zeros.py", &zeros)]), &Knobs::default()).unwrap_err();
        assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("zip bomb"), "{err}");
        assert!(err.to_string().contains("demo_pkg/zeros.py"), "{err}");
    }

    #[test]
    fn a_header_that_understates_its_data_is_refused() {
        let files = with(&[("demo_pkg/big.py", &[b'#'; 10_000])]);
        let mut bytes = build(&files, &Knobs::default());
        let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let index = archive.index_for_name("demo_pkg/big.py").unwrap();
        let entry = archive.by_index_data(index).unwrap();
        let (local, central) = (
            entry.header_start() as usize,
            entry.central_header_start() as usize,
        );
        // Uncompressed size: offset 22 in the local header, 24 in the central one.
        bytes[local + 22..local + 26].copy_from_slice(&100u32.to_le_bytes());
        bytes[central + 24..central + 28].copy_from_slice(&100u32.to_le_bytes());
        let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::Archive(_)), "{err}");
        assert!(err.to_string().contains("demo_pkg/big.py"), "{err}");
    }

    #[test]
    fn an_empty_entry_claiming_data_is_refused() {
        let files = with(&[("demo_pkg/x.py", b"")]);
        let mut bytes = build(&files, &Knobs::default());
        let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let index = archive.index_for_name("demo_pkg/x.py").unwrap();
        let entry = archive.by_index_data(index).unwrap();
        let (local, central) = (
            entry.header_start() as usize,
            entry.central_header_start() as usize,
        );
        // Compressed size 0 (offset 18 / 20), uncompressed 10 (offset 22 / 24): below the
        // ratio floor, so it is the decompression that finds nothing to expand.
        bytes[local + 18..local + 26].copy_from_slice(&[0, 0, 0, 0, 10, 0, 0, 0]);
        bytes[central + 20..central + 28].copy_from_slice(&[0, 0, 0, 0, 10, 0, 0, 0]);
        let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::Archive(_)), "{err}");
        // The same with a claim above the floor is a bomb by its ratio.
        let big = (1u32 << 20).to_le_bytes();
        bytes[local + 22..local + 26].copy_from_slice(&big);
        bytes[central + 24..central + 28].copy_from_slice(&big);
        let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(err.to_string().contains("zip bomb"), "{err}");
    }

    #[test]
    fn too_many_files_are_refused() {
        let names: Vec<String> = (0..10).map(|i| format!("demo_pkg/m{i}.py")).collect();
        let extra: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let bytes = build(&with(&extra), &Knobs::default());
        let limits = WheelLimits {
            max_files: 5,
            ..WheelLimits::default()
        };
        let err = inspect(FILENAME, &bytes, &limits).unwrap_err();
        assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("13 entries"), "{err}");
        inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
    }

    #[test]
    fn data_outside_site_packages_is_refused() {
        for (path, reason) in [
            ("demo_pkg-1.0.data/scripts/demo", "console scripts"),
            ("demo_pkg-1.0.data/headers/demo.h", "headers"),
            ("demo_pkg-1.0.data/data/share/x", "data files"),
            ("demo_pkg-1.0.data/other/x", "purelib"),
            ("demo_pkg-1.0.data/x.py", "purelib"),
        ] {
            match check(&with(&[(path, b"#!/bin/sh\n")]), &Knobs::default()) {
                Err(e @ WheelError::NotInstallable { .. }) => {
                    assert!(e.to_string().contains(reason), "{e}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn purelib_and_platlib_are_installed_at_the_root() {
        let files = with(&[
            ("demo_pkg-1.0.data/purelib/pkg/a.py", b"a = 1\n"),
            ("demo_pkg-1.0.data/platlib/other.py", b"b = 2\n"),
        ]);
        let wheel = check(&files, &Knobs::default()).unwrap();
        let a = wheel.files.iter().find(|f| f.path == "pkg/a.py").unwrap();
        assert_eq!(a.contents, b"a = 1\n");
        assert!(wheel.files.iter().any(|f| f.path == "other.py"));
        assert!(!wheel.files.iter().any(|f| f.path.contains(".data")));
        assert_eq!(wheel.top_level, ["other", "pkg"]);
        // The same top-level rules apply after the prefix is gone.
        let files = with(&[("demo_pkg-1.0.data/purelib/foo-bar/a.py", b"")]);
        assert!(matches!(
            check(&files, &Knobs::default()),
            Err(WheelError::NotInstallable { .. })
        ));
    }

    #[test]
    fn signatures_are_not_installed() {
        let files = with(&[
            ("demo_pkg/__init__.py", b""),
            ("demo_pkg-1.0.dist-info/RECORD.jws", b"{}"),
        ]);
        let knobs = Knobs {
            unlisted: vec!["demo_pkg-1.0.dist-info/RECORD.jws"],
            ..Knobs::default()
        };
        let wheel = check(&files, &knobs).unwrap();
        assert!(!wheel.files.iter().any(|f| f.path.ends_with("RECORD.jws")));
    }

    #[test]
    fn the_dist_info_must_match_the_filename() {
        for dist in [
            "other-1.0.dist-info",
            "demo_pkg-2.0.dist-info",
            "demo_pkg.dist-info",
        ] {
            let files: Files = good_files()
                .into_iter()
                .map(|(p, c)| (p.replace(DIST, dist), c))
                .collect();
            match check(&files, &Knobs::default()) {
                Err(WheelError::Metadata { path, .. }) => assert_eq!(path, dist),
                other => panic!("{dist}: {other:?}"),
            }
        }
        // Name normalisation: "Demo.Pkg" is the same project as "demo_pkg".
        let files: Files = good_files()
            .into_iter()
            .map(|(p, c)| (p.replace(DIST, "Demo.Pkg-1.0.dist-info"), c))
            .collect();
        check(&files, &Knobs::default()).unwrap();
        // A second .dist-info is one too many.
        let mut files = good_files();
        files.push((
            "other-1.0.dist-info/METADATA".into(),
            b"Name: other\n".to_vec(),
        ));
        let err = check(&files, &Knobs::default()).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn only_modules_and_packages_are_installed_at_the_top() {
        for (path, reason) in [
            ("foo-bar/x.py", "\"foo-bar\""),
            ("1pkg/x.py", "\"1pkg\""),
            ("README.txt", "top level"),
            ("foo-bar.py", "top level"),
            ("setup.cfg", "top level"),
            ("demo.pth", ".pth"),
            ("demo.PTH", ".pth"),
            ("sitecustomize.py", "start-up"),
            ("usercustomize/__init__.py", "start-up"),
        ] {
            match check(&with(&[(path, b"import os\n")]), &Knobs::default()) {
                Err(e @ WheelError::NotInstallable { .. }) => {
                    assert!(e.to_string().contains(reason), "{e}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_metadata_only_wheel_is_allowed() {
        let wheel = check(&with(&[]), &Knobs::default()).unwrap();
        assert!(wheel.top_level.is_empty());
        assert_eq!(wheel.requires.len(), 2);
    }

    #[test]
    fn bytes_that_are_not_a_wheel_are_refused() {
        for bytes in [&b""[..], b"hello, world", b"PK\x03\x04garbage"] {
            let err = inspect(FILENAME, bytes, &WheelLimits::default()).unwrap_err();
            assert!(matches!(err, WheelError::Archive(_)), "{err}");
        }
        let mut prefixed = b"\x7fELF-looking prefix".to_vec();
        prefixed.extend(build(&good_files(), &Knobs::default()));
        let err = inspect(FILENAME, &prefixed, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::Archive(_)), "{err}");
    }

    #[test]
    fn headers_unfold_and_stop_at_the_body() {
        let parse = |text: &str| {
            let mut headers = Vec::new();
            parse_headers(text, |k, v| {
                headers.push(format!("{k}={v}"));
                Ok(())
            })
            .map(|()| headers)
        };
        let headers = parse("A: 1\r\nB: x\r\n  y\r\n\tz\r\n\r\nC: 3\r\n").unwrap();
        assert_eq!(headers, ["A=1", "B=x y z"]);
        assert_eq!(parse("A:1").unwrap(), ["A=1"]);
        assert!(parse(" continued\n").is_err());
        assert!(parse("no colon\n").is_err());
        assert!(parse("bad name: x\n").is_err());
    }

    #[test]
    fn names_are_normalised_like_pep_503() {
        assert_eq!(normalize_name("Demo_Pkg"), "demo-pkg");
        assert_eq!(normalize_name("a-_.b..c"), "a-b-c");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn garbage_never_panics() {
        // Every single-byte corruption of a good wheel is either accepted or refused.
        let bytes = build(&good_files(), &Knobs::default());
        for i in 0..bytes.len() {
            for value in [0x00, 0xff, bytes[i] ^ 0x01] {
                let mut broken = bytes.clone();
                broken[i] = value;
                let _ = inspect(FILENAME, &broken, &WheelLimits::default());
            }
            let _ = inspect(FILENAME, &bytes[..i], &WheelLimits::default());
        }
    }

    #[test]
    fn special_file_types_are_refused() {
        // External attributes: offset 38 in the central header, the Unix mode in the high half.
        for (mode, reason) in [
            (0o010644u32, "only regular files"),
            (0o020644, "only regular files"),
            (0o040755, "trailing '/'"),
            (0o120777, "symbolic link"),
        ] {
            let mut bytes = build(&good_files(), &Knobs::default());
            let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
            let index = archive.index_for_name("helper.py").unwrap();
            let at = archive.by_index_data(index).unwrap().central_header_start() as usize + 38;
            bytes[at..at + 4].copy_from_slice(&(mode << 16).to_le_bytes());
            assert_unsafe(inspect(FILENAME, &bytes, &WheelLimits::default()), reason);
        }
    }

    #[test]
    fn endless_requirements_are_refused() {
        let mut metadata = String::from("Name: demo_pkg\n");
        for i in 0..=MAX_REQUIRES {
            metadata.push_str(&format!("Requires-Dist: dep{i}\n"));
        }
        let mut files = good_files();
        files[1].1 = metadata.into_bytes();
        let err = check(&files, &Knobs::default()).unwrap_err();
        assert!(err.to_string().contains("Requires-Dist"), "{err}");
    }
}
