//! The `.dist-info` headers: `WHEEL` (format and tags) and `METADATA` (name, requirements).

use std::collections::HashMap;

use super::WheelError;
use super::filename::normalize_name;
use super::layout::Layout;

/// Most `Requires-Dist` headers accepted: real projects have tens, and each costs memory.
pub(super) const MAX_REQUIRES: usize = 1000;

/// Checks `WHEEL`: wheel format 1.x, installed into purelib, and pure-Python tags only.
pub(super) fn check_wheel_file(
    layout: &Layout,
    files: &HashMap<&str, &[u8]>,
) -> Result<(), WheelError> {
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
pub(super) fn read_metadata(
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
pub(super) fn parse_headers(
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
pub(super) fn utf8<'a>(path: &str, files: &HashMap<&str, &'a [u8]>) -> Result<&'a str, WheelError> {
    let data = files.get(path).copied().unwrap_or_default();
    std::str::from_utf8(data).map_err(|_| WheelError::Metadata {
        path: path.to_owned(),
        reason: "is not UTF-8".into(),
    })
}
