//! The runtime directory for tests, built (or found in its cache) by the same script users run;
//! a test never skips because it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The runtime directory, built through scripts/build-python-runtime on first use.
pub fn runtime_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-python-runtime");
        let output = Command::new(&script)
            .arg("--quiet")
            .output()
            .expect("running the build script");
        assert!(
            output.status.success(),
            "scripts/build-python-runtime failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).expect("utf-8 path");
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("the script prints the runtime dir")
                .trim(),
        )
    })
}
