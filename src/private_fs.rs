//! Directories only pubfn's own user may read: the data directory (the cluster, the sealing
//! key) and the caches of snapshots and compiled code (a snapshot holds its tenant's str hash
//! secret and everything its interpreter imported).

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode `0700`; an existing `dir` that others may read,
/// write or pass through loses those bits. On a directory with an access ACL the group bits
/// are its mask, and a search-only mask is what lets the cluster's user through (see
/// `db::cluster`): that one bit stays. Parents that already exist are left as they are.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    let closed = if has_acl(dir) {
        mode & !0o067
    } else {
        mode & !0o077
    };
    if mode != closed {
        tracing::info!(
            dir = %dir.display(),
            "closing a directory to other users (mode {:o} -> {:o})",
            mode & 0o777,
            closed & 0o777
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(closed))?;
    }
    Ok(())
}

/// Whether `path` has an access ACL beyond its mode bits.
fn has_acl(path: &Path) -> bool {
    let mut buffer = [0u8; 1024];
    rustix::fs::getxattr(path, "system.posix_acl_access", &mut buffer[..]).is_ok()
}

/// Makes every file and directory this process creates from now on its owner's alone.
pub fn restrict_new_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_existing_directories_end_up_private() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        ensure_private_dir(&fresh).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }
}
