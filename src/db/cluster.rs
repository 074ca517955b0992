//! A private PostgreSQL cluster run from the installed server binaries: the embedded default of
//! `pubfn serve`, and the throwaway cluster of the tests.
//!
//! The cluster listens on a Unix socket inside its own directory only (no TCP). Only the OS
//! user running pubfn becomes its superuser (`peer`), tenant roles log in with SCRAM passwords,
//! and the directory and socket are `0700`: see [`access`]. Started as root, the server runs as
//! the unprivileged user `postgres`, since PostgreSQL refuses to run as root.

mod access;
mod acl;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use access::OsUser;

/// The superuser role created in a private cluster.
pub const SUPERUSER: &str = "pubfn";

/// Why a private cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (install Debian's postgresql; scripts/setup does)"
    )]
    NoBinaries,
    /// Started as root, with no unprivileged user to run the cluster as.
    #[error(
        "running as root, the private cluster needs the unprivileged system user '{}' to run \
         as (Debian's postgresql package creates it); or run pubfn as an unprivileged user",
        access::RUN_AS_WHEN_ROOT
    )]
    NoClusterUser,
    /// The cluster's user cannot reach its directory.
    #[error("the cluster's user {user} cannot pass through {}: {detail}", blocked.display())]
    Unreachable {
        /// The cluster's user.
        user: String,
        /// The first directory it cannot pass.
        blocked: PathBuf,
        /// What to do about it.
        detail: String,
    },
    /// A command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// What ran.
        command: String,
        /// Its output, or the error that kept it from running.
        detail: String,
    },
    /// Filesystem trouble with the cluster directory.
    #[error("cluster directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A running private cluster; stopped when dropped.
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The user the server runs as when it is not this process's (started as root).
    run_as: Option<OsUser>,
    stopped: bool,
}

impl LocalCluster {
    /// Starts the cluster in `dir`, creating it on first use. The cluster also stops by itself
    /// once this process is gone, even if it is killed.
    pub fn start(dir: &Path) -> Result<Self, ClusterError> {
        let bin = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let io = |source| ClusterError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dir = dir.canonicalize().map_err(io)?;
        let server_user = OsUser::current()?;
        let run_as = if server_user.uid == 0 {
            Some(access::run_as_for_root()?)
        } else {
            None
        };
        access::make_private(&dir, run_as.as_ref())?;
        if let Some(user) = &run_as {
            access::ensure_reachable(&dir, user)?;
        }
        let cluster = LocalCluster {
            dir,
            bin,
            run_as,
            stopped: false,
        };
        let data = cluster.data_dir();
        if !data.join("PG_VERSION").exists() {
            let mut initdb = cluster.pg_command("initdb");
            initdb.arg("-D").arg(&data).args([
                "-U",
                SUPERUSER,
                "--auth-local=peer",
                "--auth-host=reject",
                "-E",
                "UTF8",
                "--no-instructions",
            ]);
            cluster.run("initdb", &mut initdb)?;
        }
        // Rewritten at every start: a cluster an older pubfn made with `trust` closes too.
        let owner = cluster.run_as.as_ref();
        access::write_config(&access::hba_path(&data), &access::hba_conf(), owner)?;
        access::write_config(
            &access::ident_path(&data),
            &access::ident_conf(&server_user.name),
            owner,
        )?;
        let mut start = cluster.pg_command("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("postgres.log"))
            .args(["-w", "-t", "60"]);
        // The socket is its owner's alone, like the directory it is in.
        start.arg("-o").arg(format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' \
             -c unix_socket_permissions=0700 -c password_encryption=scram-sha-256 \
             -c max_connections=200",
            cluster.dir.display()
        ));
        start.arg("start");
        cluster.run("pg_ctl start", &mut start)?;
        cluster.stop_with_this_process();
        Ok(cluster)
    }

    /// Connection settings for the cluster's superuser.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(5432)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// A libpq-style connection string for the cluster's superuser.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@localhost/{dbname}?host={}",
            self.dir.display()
        )
    }

    /// Stops the cluster (fast shutdown); dropping it does the same.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut stop = self.pg_command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]);
        self.run("pg_ctl stop", &mut stop)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The argv that runs `program` from the server's bin directory, as the cluster's user.
    fn pg_argv(&self, program: &str) -> Vec<String> {
        let path = self.bin.join(program).display().to_string();
        match &self.run_as {
            Some(user) => vec![
                "runuser".into(),
                "-u".into(),
                user.name.clone(),
                "--".into(),
                path,
            ],
            None => vec![path],
        }
    }

    fn pg_command(&self, program: &str) -> Command {
        let argv = self.pg_argv(program);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<(), ClusterError> {
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ClusterError::Command {
                command: what.to_string(),
                detail: e.to_string(),
            })?;
        if output.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).into_owned();
        if let Ok(log) = std::fs::read_to_string(self.dir.join("postgres.log")) {
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            detail.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        Err(ClusterError::Command {
            command: what.to_string(),
            detail,
        })
    }

    /// A watchdog shell that stops the cluster when this process exits, however it exits.
    fn stop_with_this_process(&self) {
        let mut argv = self.pg_argv("pg_ctl");
        argv.extend([
            "-D".into(),
            self.data_dir().display().to_string(),
            "-m".into(),
            "fast".into(),
        ]);
        argv.push("stop".into());
        // Single-quote every word for sh; a quote inside a word becomes '\''.
        let stop_line: Vec<String> = argv
            .iter()
            .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
            .collect();
        let stop_line = stop_line.join(" ");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop_line} >/dev/null 2>&1",
            pid = std::process::id()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("stopping the private PostgreSQL cluster: {e}");
        }
    }
}

/// The newest installed server's bin directory.
fn find_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
