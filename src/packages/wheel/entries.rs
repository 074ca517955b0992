//! The archive's entries: names, types and sizes read from the central directory and checked
//! before anything is decompressed, then each entry decompressed within its declared size.

use std::collections::HashSet;
use std::io::{Cursor, Read};

use zip::{CompressionMethod, ZipArchive};

use super::{Entry, RATIO_FLOOR_BYTES, WheelError, WheelLimits, archive_error};

/// Longest path inside a wheel accepted.
const MAX_PATH_LEN: usize = 512;

/// Longest single path component: Linux's `NAME_MAX`, so unpacking cannot fail half-way.
const MAX_COMPONENT_LEN: usize = 255;

/// Reads every central-directory entry's name, type and declared sizes, refusing unsafe ones
/// and zip bombs before anything is decompressed. Returns the regular files and the
/// directories (names without their trailing `/`).
pub(super) fn list_entries(
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

/// Decompresses one entry, never producing more than its declared (and already capped) size.
pub(super) fn read_entry(
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
