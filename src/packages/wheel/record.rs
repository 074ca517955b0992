//! `RECORD`: the list that must vouch, by sha256 and size, for every file of the wheel.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::WheelError;
use super::layout::Layout;
use super::metadata::utf8;

/// Checks that RECORD lists every file of the archive, with its sha256 and size, and nothing
/// else.
pub(super) fn check_record(
    layout: &Layout,
    files: &HashMap<&str, &[u8]>,
) -> Result<(), WheelError> {
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
pub(super) struct RecordRows<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> RecordRows<'a> {
    /// Most fields a row may have: RECORD's three, and no millions of empty ones.
    const MAX_FIELDS: usize = 3;

    pub(super) fn new(text: &'a str) -> Self {
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
