//! Who may reach a private cluster: its OS user, its directory, its socket and its
//! authentication rules.
//!
//! The server's own OS user is the only one that becomes the superuser (`peer`, mapped through
//! `pg_ident.conf`); tenant roles log in with their SCRAM passwords; nothing is `trust`. The
//! cluster directory and its socket are `0700` and belong to the cluster's user, so no other
//! local user reaches the socket at all (root aside, who is trusted).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ClusterError, SUPERUSER};

/// The unprivileged system user a cluster runs as when pubfn is started as root (PostgreSQL
/// refuses to run as root). Debian's `postgresql` package creates it. `nobody` is never used:
/// other services run as `nobody`, and whoever is that user would own the cluster's files.
pub const RUN_AS_WHEN_ROOT: &str = "postgres";

/// An OS user, as `id` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl OsUser {
    /// Looks `name` up (through NSS, as `id` does).
    pub fn lookup(name: &str) -> Option<OsUser> {
        let number = |flag: &str| -> Option<u32> {
            let output = Command::new("id").arg(flag).arg(name).output().ok()?;
            output.status.success().then_some(())?;
            String::from_utf8(output.stdout).ok()?.trim().parse().ok()
        };
        Some(OsUser {
            name: name.to_string(),
            uid: number("-u")?,
            gid: number("-g")?,
        })
    }

    /// The user this process runs as.
    pub fn current() -> Result<OsUser, ClusterError> {
        let uid = rustix::process::geteuid().as_raw();
        let output = Command::new("id")
            .arg("-un")
            .output()
            .map_err(|e| command_error("id -un", e.to_string()))?;
        let name = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || name.is_empty() {
            return Err(command_error(
                "id -un",
                format!("uid {uid} has no user name, which peer authentication needs"),
            ));
        }
        Ok(OsUser {
            name,
            uid,
            gid: rustix::process::getegid().as_raw(),
        })
    }
}

fn command_error(command: &str, detail: String) -> ClusterError {
    ClusterError::Command {
        command: command.into(),
        detail,
    }
}

/// `pg_hba.conf` of a private cluster: written at every start, so a cluster made by an older
/// pubfn (with `trust`) is closed as it starts.
pub fn hba_conf() -> String {
    format!(
        "# Written by pubfn at every start; edits are overwritten.\n\
         # The superuser: only the OS user that runs pubfn (peer, mapped in pg_ident.conf).\n\
         local all {SUPERUSER} peer map=pubfn\n\
         # Tenant roles: their own SCRAM password.\n\
         local all all scram-sha-256\n"
    )
}

/// `pg_ident.conf`: the OS user running pubfn may log in as the superuser.
pub fn ident_conf(server_user: &str) -> String {
    format!(
        "# Written by pubfn at every start; edits are overwritten.\n\
         pubfn {server_user} {SUPERUSER}\n"
    )
}

/// Writes one of the cluster's configuration files, owned by the cluster's user.
pub fn write_config(path: &Path, text: &str, owner: Option<&OsUser>) -> Result<(), ClusterError> {
    let io = |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, text).map_err(io)?;
    if let Some(owner) = owner {
        chown(path, owner)?;
    }
    set_mode(path, 0o600)
}

/// Makes `dir` the cluster user's alone: mode `0700`, owned by it.
pub fn make_private(dir: &Path, owner: Option<&OsUser>) -> Result<(), ClusterError> {
    if let Some(owner) = owner {
        chown(dir, owner)?;
    }
    set_mode(dir, 0o700)
}

fn chown(path: &Path, owner: &OsUser) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid)).map_err(|source| {
        ClusterError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ClusterError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ClusterError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Makes sure `user` can reach `dir` (whose parent is pubfn's data directory): the parent gets
/// an ACL entry granting `user` search permission (`--x`) if it lacks it, so a data directory
/// of mode `0700` (what `mktemp -d` makes) stays closed to everyone else. A directory further
/// up that `user` cannot pass is the operator's to open; the error names it.
pub fn ensure_reachable(dir: &Path, user: &OsUser) -> Result<(), ClusterError> {
    if can_search(user, dir) {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !can_search(user, parent)
        && parent.parent().is_none_or(|above| can_search(user, above))
    {
        super::acl::grant_search(parent, user.uid).map_err(|source| ClusterError::Unreachable {
            user: user.name.clone(),
            blocked: parent.to_path_buf(),
            detail: format!("granting it search permission with an ACL failed: {source}"),
        })?;
        if can_search(user, dir) {
            return Ok(());
        }
    }
    let blocked = dir
        .ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|path| !can_search(user, path))
        .unwrap_or(dir)
        .to_path_buf();
    Err(ClusterError::Unreachable {
        user: user.name.clone(),
        detail: format!(
            "let it pass with `setfacl -m u:{}:x {}` (or choose a --data-dir it can reach)",
            user.name,
            blocked.display()
        ),
        blocked,
    })
}

/// Whether `user` may search (pass through) `path`: asked of the kernel as that user, so ACLs
/// and every directory above count.
fn can_search(user: &OsUser, path: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", &user.name, "--", "test", "-x"])
        .arg(path)
        .status()
        .is_ok_and(|status| status.success())
}

/// The cluster's user when this process is root: [`RUN_AS_WHEN_ROOT`], which must exist.
pub fn run_as_for_root() -> Result<OsUser, ClusterError> {
    OsUser::lookup(RUN_AS_WHEN_ROOT).ok_or(ClusterError::NoClusterUser)
}

/// Paths a cluster directory holds.
pub fn hba_path(data: &Path) -> PathBuf {
    data.join("pg_hba.conf")
}

/// The ident map's path.
pub fn ident_path(data: &Path) -> PathBuf {
    data.join("pg_ident.conf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_trusted() {
        let hba = hba_conf();
        assert!(!hba.contains("trust"), "{hba}");
        assert!(!hba.lines().any(|l| l.starts_with("host")), "{hba}");
        assert!(hba.contains("local all pubfn peer map=pubfn"));
        assert_eq!(
            ident_conf("root").lines().last(),
            Some("pubfn root pubfn"),
            "only the server's user maps to the superuser"
        );
    }
}
