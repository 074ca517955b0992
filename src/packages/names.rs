//! Module names: what a tenant's module or package may be called.
//!
//! A tenant's name must not shadow a module of the runtime: the stdlib (a `json` of its own
//! would replace the real one for every import, the SDK's included), the `pq` SDK, or the
//! packages bundled with the runtime (`requests`, whose transport pubfn routes through the
//! host). Those are refused at upload, with the reason.

use std::collections::BTreeSet;

use super::PackageError;

/// Longest dotted module name accepted.
pub const MAX_MODULE_NAME: usize = 200;

/// Deepest package nesting accepted (`a.b.c.d.e.f.g.h`).
pub const MAX_MODULE_DEPTH: usize = 8;

/// Python's keywords: a package so named could never be imported with `import`.
const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Whether `part` is an ASCII Python identifier and not a keyword.
pub fn is_identifier(part: &str) -> bool {
    let mut bytes = part.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
        && !KEYWORDS.contains(&part)
}

/// Checks a dotted module name (`helpers`, `helpers.text`); `what` names it in the error.
pub fn check_module_name(what: &str, name: &str) -> Result<(), PackageError> {
    let invalid = |why: &str| PackageError::Name(format!("{what} {name:?}: {why}"));
    if name.is_empty() || name.len() > MAX_MODULE_NAME {
        return Err(invalid(&format!(
            "must be 1 to {MAX_MODULE_NAME} characters"
        )));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > MAX_MODULE_DEPTH {
        return Err(invalid(&format!("at most {MAX_MODULE_DEPTH} dotted parts")));
    }
    if let Some(bad) = parts.iter().find(|p| !is_identifier(p)) {
        return Err(invalid(&format!(
            "{bad:?} is not a Python identifier (ASCII letters, digits and _, not a keyword)"
        )));
    }
    Ok(())
}

/// The top-level module names a tenant may not use.
#[derive(Debug, Clone, Default)]
pub struct ReservedNames {
    stdlib: BTreeSet<String>,
    bundled: BTreeSet<String>,
}

impl ReservedNames {
    /// `stdlib`: every stdlib module name (`sys.stdlib_module_names`); `bundled`: the
    /// top-level names of the runtime's own packages (`pq`, `requests`, ...).
    pub fn new(
        stdlib: impl IntoIterator<Item = String>,
        bundled: impl IntoIterator<Item = String>,
    ) -> Self {
        ReservedNames {
            stdlib: stdlib.into_iter().collect(),
            bundled: bundled.into_iter().collect(),
        }
    }

    /// Refuses a top-level name the runtime already has; `what` names it in the error.
    pub fn check(&self, what: &str, top_level: &str) -> Result<(), PackageError> {
        // Case-insensitively: on a case-insensitive file system `JSON.py` would be `json`.
        let lower = top_level.to_ascii_lowercase();
        if self.stdlib.contains(top_level) || self.stdlib.contains(&lower) {
            return Err(PackageError::Name(format!(
                "{what}: {top_level:?} would shadow the standard library's module of that name"
            )));
        }
        if self.bundled.contains(top_level) || self.bundled.contains(&lower) {
            return Err(PackageError::Name(format!(
                "{what}: {top_level:?} is part of the runtime already (pq, or a package bundled \
                 with it such as requests); it cannot be replaced"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved() -> ReservedNames {
        ReservedNames::new(
            ["json".to_string(), "os".to_string()],
            ["pq".to_string(), "requests".to_string()],
        )
    }

    #[test]
    fn dotted_identifiers_are_module_names_and_nothing_else_is() {
        for good in ["helpers", "helpers.text", "_private", "a1.b2"] {
            check_module_name("module", good).unwrap();
        }
        for bad in [
            "",
            "1abc",
            "a..b",
            ".a",
            "a.",
            "a-b",
            "a/b",
            "class",
            "a.def",
            "ü",
            "a b",
            "a.b.c.d.e.f.g.h.i",
        ] {
            assert!(check_module_name("module", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stdlib_and_runtime_names_are_taken() {
        let reserved = reserved();
        assert!(reserved.check("module", "json").is_err());
        assert!(reserved.check("module", "JSON").is_err());
        assert!(reserved.check("module", "pq").is_err());
        assert!(reserved.check("module", "requests").is_err());
        reserved.check("module", "helpers").unwrap();
    }
}
