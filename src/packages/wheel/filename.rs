//! The wheel's file name (PEP 427) and the names in it.

use super::WheelError;

/// Longest wheel file name accepted.
const MAX_FILENAME_LEN: usize = 200;

/// Splits a PEP 427 file name into its (escaped) project name and version, refusing any tag
/// other than pure Python.
pub(super) fn parse_filename(filename: &str) -> Result<(&str, &str), WheelError> {
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
pub(super) fn normalize_name(name: &str) -> String {
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
pub(super) fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && s.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}
