//! Tenants' Python packages end to end: their own modules and pure-Python wheels (built here,
//! no network) installed through the admin API of a real `pubfn serve`, imported by handlers,
//! preloaded into the snapshot, kept per endpoint version, and every kind of bad package
//! refused with a clear 400 that installs nothing.

#[path = "common/server.rs"]
mod common;
#[path = "common/warehouse.rs"]
mod warehouse;
#[path = "common/wheels.rs"]
mod wheels;

use common::{ADMIN_KEY, Reply, Server, admin, cli as pubfn, deploy, fresh_database, request};
use serde_json::{Value, json};
use warehouse::{bearer, get, last_log};
use wheels::WheelSpec;

async fn put_wheel(server: &Server, tenant: &str, filename: &str, bytes: &[u8]) -> Reply {
    let auth = format!("Bearer {ADMIN_KEY}");
    request(
        "PUT",
        &format!(
            "{}/admin/v1/tenants/{tenant}/wheels/{filename}",
            server.admin_base
        ),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        bytes,
    )
    .await
}

async fn install(server: &Server, tenant: &str, wheel: &WheelSpec<'_>) -> Value {
    let reply = put_wheel(server, tenant, &wheel.filename(), &wheel.build()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}

async fn put_module(server: &Server, tenant: &str, name: &str, source: &str) -> Reply {
    admin(
        server,
        "PUT",
        &format!("/tenants/{tenant}/modules/{name}"),
        json!({"source": source}),
    )
    .await
}

async fn create_tenant(server: &Server, tenant: &str) {
    let reply = admin(server, "POST", "/tenants", json!({"name": tenant})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn endpoint(server: &Server, tenant: &str, name: &str, script: &str) -> Value {
    deploy(
        server,
        tenant,
        name,
        json!({"method": "GET", "route": format!("/{name}"), "script": script}),
    )
    .await
}

async fn call(server: &Server, auth: &str, tenant: &str, name: &str) -> Value {
    let reply = get(server, &format!("/{tenant}/{name}"), auth).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}\n{}",
        reply.body,
        last_log(server, tenant, name).await
    );
    reply.json()
}

fn greet_wheels() -> (WheelSpec<'static>, WheelSpec<'static>) {
    let dependency = WheelSpec::new(
        "greetdep",
        "1.0",
        &[("greetdep/__init__.py", "PREFIX = 'hello'\n")],
    );
    let mut greet = WheelSpec::new(
        "greet",
        "2.1",
        &[(
            "greet.py",
            "from greetdep import PREFIX\n\ndef greet(name):\n    return f'{PREFIX} {name}'\n",
        )],
    );
    greet.requires = vec!["greetdep>=1.0"];
    (dependency, greet)
}

/// Reports, from module level (run when the handler's script loads), whether each name was
/// imported before the script ran: true only for what the snapshot preloaded.
const PRELOADED: &str = "import sys
BEFORE = {name: name in sys.modules for name in ('greet', 'greetdep', 'helpers', 'helpers.text')}
import helpers
from helpers.text import title
from greet import greet

def handler():
    return {'before': BEFORE, 'text': helpers.shout(title(greet('ada')))}
";

const SECOND: &str = "from helpers.text import title

def handler():
    return {'title': title('shared by two')}
";

#[tokio::test(flavor = "multi_thread")]
async fn modules_and_wheels_are_shared_by_endpoints_and_preloaded_into_the_snapshot() {
    let db = fresh_database("packages_shared").await;
    let server = Server::start(Some(&db), &[]);
    create_tenant(&server, "pk").await;
    let reply = put_module(
        &server,
        "pk",
        "helpers",
        "def shout(s):\n    return s.upper() + '!'\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = put_module(
        &server,
        "pk",
        "helpers.text",
        "def title(s):\n    return s.title()\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let (dependency, greet) = greet_wheels();
    install(&server, "pk", &dependency).await;
    let listed = install(&server, "pk", &greet).await;
    assert_eq!(listed["name"], "greet");
    assert_eq!(listed["version"], "2.1");
    assert_eq!(listed["top_level"], json!(["greet"]));
    assert_eq!(listed["requires"], json!(["greetdep>=1.0"]));

    let reply = admin(
        &server,
        "PUT",
        "/tenants/pk/preload",
        json!({"modules": ["greet", "helpers"]}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let first = endpoint(&server, "pk", "first", PRELOADED).await;
    let set = first["version"]["package_set"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(set.len(), 64);
    endpoint(&server, "pk", "second", SECOND).await;
    let auth = bearer(&server, "pk").await;
    let answer = call(&server, &auth, "pk", "first").await;
    assert_eq!(answer["text"], "HELLO ADA!");
    assert_eq!(
        answer["before"],
        json!({"greet": true, "greetdep": true, "helpers": true, "helpers.text": false})
    );
    assert_eq!(
        call(&server, &auth, "pk", "second").await["title"],
        "Shared By Two"
    );

    // What is installed, listed: name, version, size and SHA-256 of each wheel.
    let wheels = admin(&server, "GET", "/tenants/pk/wheels", json!(null))
        .await
        .json();
    let names: Vec<&str> = wheels
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greet", "greetdep"]);
    for wheel in wheels.as_array().unwrap() {
        assert!(wheel["size"].as_u64().unwrap() > 0);
        assert_eq!(wheel["sha256"].as_str().unwrap().len(), 64);
    }
    let module = admin(
        &server,
        "GET",
        "/tenants/pk/modules/helpers.text",
        json!(null),
    )
    .await
    .json();
    assert_eq!(module["source"], "def title(s):\n    return s.title()\n");
    let summary = admin(&server, "GET", "/tenants/pk/packages", json!(null))
        .await
        .json();
    assert_eq!(summary["package_set"], set.as_str());
    assert_eq!(summary["preload"], json!(["greet", "helpers"]));
}

/// What a refusal looks like: a 400 problem naming the cause.
fn assert_refused(reply: &Reply, says: &str) {
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let detail = reply.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.to_lowercase().contains(&says.to_lowercase()),
        "{detail:?} should say {says:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_packages_are_refused_with_the_reason_and_nothing_is_installed() {
    let db = fresh_database("packages_refused").await;
    let server = Server::start(Some(&db), &[]);
    create_tenant(&server, "bad").await;
    let good = WheelSpec::new("fine", "1.0", &[("fine.py", "X = 1\n")]);
    install(&server, "bad", &good).await;
    let before = admin(&server, "GET", "/tenants/bad/packages", json!(null))
        .await
        .json();

    let mut platform = WheelSpec::new("native", "1.0", &[("native.py", "")]);
    platform.tag = "cp313-cp313-manylinux_2_17_x86_64";
    assert_refused(
        &put_wheel(&server, "bad", &platform.filename(), &platform.build()).await,
        "pure-python",
    );
    let shared_object = WheelSpec::new(
        "sneaky",
        "1.0",
        &[
            ("sneaky/__init__.py", ""),
            ("sneaky/_speedups.so", "\x7fELF"),
        ],
    );
    assert_refused(
        &put_wheel(
            &server,
            "bad",
            &shared_object.filename(),
            &shared_object.build(),
        )
        .await,
        ".so",
    );
    let climbing = WheelSpec::new("climb", "1.0", &[("../climb.py", "")]);
    assert_refused(
        &put_wheel(&server, "bad", &climbing.filename(), &climbing.build()).await,
        "..",
    );
    let absolute = WheelSpec::new("abs", "1.0", &[("/etc/abs.py", "")]);
    assert_refused(
        &put_wheel(&server, "bad", &absolute.filename(), &absolute.build()).await,
        "absolute",
    );
    let mut linked = WheelSpec::new("linked", "1.0", &[("linked/__init__.py", "")]);
    linked.symlink = Some("linked/passwd.py");
    assert_refused(
        &put_wheel(&server, "bad", &linked.filename(), &linked.build()).await,
        "symbolic link",
    );
    let mut tampered = WheelSpec::new("tampered", "1.0", &[("tampered.py", "X = 2\n")]);
    tampered.wrong_hash = true;
    assert_refused(
        &put_wheel(&server, "bad", &tampered.filename(), &tampered.build()).await,
        "RECORD",
    );
    let zeros = "\0".repeat(80 << 20);
    let bomb = WheelSpec::new(
        "bomb",
        "1.0",
        &[("bomb/__init__.py", ""), ("bomb/data.py", &zeros)],
    );
    let reply = put_wheel(&server, "bad", &bomb.filename(), &bomb.build()).await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    let shadow = WheelSpec::new("jsonfast", "1.0", &[("json/__init__.py", "")]);
    assert_refused(
        &put_wheel(&server, "bad", &shadow.filename(), &shadow.build()).await,
        "standard library",
    );
    assert_refused(
        &put_module(&server, "bad", "pq", "X = 1\n").await,
        "runtime",
    );
    assert_refused(
        &put_module(&server, "bad", "requests", "X = 1\n").await,
        "runtime",
    );
    assert_refused(
        &put_module(&server, "bad", "os.path2", "X = 1\n").await,
        "standard library",
    );
    assert_refused(
        &put_module(&server, "bad", "bad-name", "X = 1\n").await,
        "identifier",
    );
    // A syntax error, with its position, as a script's is.
    let reply = put_module(&server, "bad", "broken", "def f(:\n    pass\n").await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.json()["line"], 1);
    assert!(reply.json()["column"].is_number());

    // A preloaded module that raises: refused with its traceback, in the tenant's file.
    let reply = put_module(
        &server,
        "bad",
        "explodes",
        "X = 1\n\ndef boom():\n    return 1 / 0\n\nboom()\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = admin(
        &server,
        "PUT",
        "/tenants/bad/preload",
        json!({"modules": ["explodes"]}),
    )
    .await;
    assert_refused(&reply, "ZeroDivisionError");
    let traceback = reply.json()["traceback"].as_str().unwrap().to_string();
    assert!(traceback.contains("explodes.py"), "{traceback}");
    assert!(traceback.contains("line 4"), "{traceback}");
    admin(
        &server,
        "DELETE",
        "/tenants/bad/modules/explodes",
        json!(null),
    )
    .await;

    // One that never finishes importing: ended by the tenant's CPU limit, and said so.
    let reply = admin(
        &server,
        "PUT",
        "/tenants/bad/limits",
        json!({"max_cpu_ms": 1000}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        put_module(&server, "bad", "spins", "while True:\n    pass\n")
            .await
            .status,
        200
    );
    let reply = admin(
        &server,
        "PUT",
        "/tenants/bad/preload",
        json!({"modules": ["spins"]}),
    )
    .await;
    assert_refused(&reply, "1000 ms");
    admin(&server, "DELETE", "/tenants/bad/modules/spins", json!(null)).await;

    // Past the quota.
    let reply = admin(
        &server,
        "PUT",
        "/tenants/bad/limits",
        json!({"max_package_bytes": 4096}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let big = "# padding\n".repeat(1000);
    let large = WheelSpec::new("large", "1.0", &[("large.py", &big)]);
    assert_refused(
        &put_wheel(&server, "bad", &large.filename(), &large.build()).await,
        "quota",
    );

    let after = admin(&server, "GET", "/tenants/bad/packages", json!(null))
        .await
        .json();
    assert_eq!(after["package_set"], before["package_set"]);
    assert_eq!(after["wheels"], before["wheels"]);
    assert_eq!(after["modules"], json!([]));
}

const VERSION: &str = "import vpkg

def handler():
    return {'version': vpkg.VERSION}
";

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_and_each_version_keeps_its_own_package_set() {
    let db = fresh_database("packages_versions").await;
    let server = Server::start(Some(&db), &[]);
    let old = WheelSpec::new("vpkg", "1.0", &[("vpkg.py", "VERSION = '1.0'\n")]);
    let new = WheelSpec::new("vpkg", "2.0", &[("vpkg.py", "VERSION = '2.0'\n")]);
    for (tenant, wheel) in [("one", &old), ("two", &new)] {
        create_tenant(&server, tenant).await;
        install(&server, tenant, wheel).await;
        endpoint(&server, tenant, "v", VERSION).await;
    }
    let (one, two) = (bearer(&server, "one").await, bearer(&server, "two").await);
    assert_eq!(call(&server, &one, "one", "v").await["version"], "1.0");
    assert_eq!(call(&server, &two, "two", "v").await["version"], "2.0");

    // A new wheel never changes a deployed version behind its back ...
    // (A new version of an installed project replaces it: an upgrade.)
    install(&server, "one", &new).await;
    let wheels = admin(&server, "GET", "/tenants/one/wheels", json!(null))
        .await
        .json();
    assert_eq!(wheels.as_array().unwrap().len(), 1, "{wheels}");
    assert_eq!(wheels[0]["version"], "2.0");
    assert_eq!(call(&server, &one, "one", "v").await["version"], "1.0");
    // ... the next deploy takes it ...
    endpoint(&server, "one", "v", VERSION).await;
    assert_eq!(call(&server, &one, "one", "v").await["version"], "2.0");
    // ... and a rollback brings the old set back with the old version.
    let reply = admin(
        &server,
        "POST",
        "/tenants/one/endpoints/v/rollback",
        json!({"version": 1}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(call(&server, &one, "one", "v").await["version"], "1.0");
    let versions = admin(
        &server,
        "GET",
        "/tenants/one/endpoints/v/versions",
        json!(null),
    )
    .await
    .json();
    assert_ne!(versions[0]["package_set"], versions[1]["package_set"]);
    assert_eq!(call(&server, &two, "two", "v").await["version"], "2.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_resolves_requirements_with_pip_and_manages_packages() {
    let db = fresh_database("packages_cli").await;
    let server = Server::start(Some(&db), &[]);
    create_tenant(&server, "cli").await;
    // A local index for pip (no network): the two wheels, found through --find-links.
    let index = tempfile::tempdir().unwrap();
    let (dependency, greet) = greet_wheels();
    for wheel in [&dependency, &greet] {
        std::fs::write(index.path().join(wheel.filename()), wheel.build()).unwrap();
    }
    let requirements = index.path().join("requirements.txt");
    std::fs::write(&requirements, "greet==2.1\n").unwrap();
    let pip_env = [
        ("PIP_NO_INDEX", "1"),
        ("PIP_FIND_LINKS", index.path().to_str().unwrap()),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ];
    let add = [
        "packages",
        "add",
        "--tenant",
        "cli",
        "-r",
        requirements.to_str().unwrap(),
    ];
    let (ok, out, err) = pubfn(&server, &add, &pip_env);
    assert!(ok, "{out}\n{err}");
    // pip found the dependency through greet's Requires-Dist.
    let (ok, out, err) = pubfn(&server, &["packages", "list", "--tenant", "cli"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("greetdep") && out.contains("2.1"), "{out}");

    let module = index.path().join("helpers.py");
    std::fs::write(&module, "def shout(s):\n    return s.upper()\n").unwrap();
    let set = [
        "module",
        "set",
        "--tenant",
        "cli",
        "helpers",
        module.to_str().unwrap(),
    ];
    let (ok, _, err) = pubfn(&server, &set, &[]);
    assert!(ok, "{err}");
    let (ok, out, err) = pubfn(
        &server,
        &["module", "show", "--tenant", "cli", "helpers"],
        &[],
    );
    assert!(ok && out.contains("def shout"), "{out}{err}");
    let preload = ["packages", "preload", "--tenant", "cli", "greet", "helpers"];
    let (ok, _, err) = pubfn(&server, &preload, &[]);
    assert!(ok, "{err}");
    endpoint(
        &server,
        "cli",
        "hi",
        "import helpers, greet\n\ndef handler():\n    return {'hi': helpers.shout(greet.greet('cli'))}\n",
    )
    .await;
    let auth = bearer(&server, "cli").await;
    assert_eq!(call(&server, &auth, "cli", "hi").await["hi"], "HELLO CLI");

    // A wheel file as it is; a platform wheel is refused with the server's reason.
    let mut platform = WheelSpec::new("native", "1.0", &[("native.py", "")]);
    platform.tag = "cp313-cp313-manylinux_2_17_x86_64";
    let path = index.path().join(platform.filename());
    std::fs::write(&path, platform.build()).unwrap();
    let add_file = ["packages", "add", "--tenant", "cli", path.to_str().unwrap()];
    let (ok, _, err) = pubfn(&server, &add_file, &[]);
    assert!(
        !ok && err.contains("400") && err.contains("pure-Python"),
        "{err}"
    );

    // A preloaded package cannot be removed from under its preload list ...
    let remove = ["packages", "remove", "--tenant", "cli", "greet"];
    let (ok, _, err) = pubfn(&server, &remove, &[]);
    assert!(!ok && err.contains("No module named 'greet'"), "{err}");
    // ... once off the list, it can.
    let preload = ["packages", "preload", "--tenant", "cli", "helpers"];
    let (ok, _, err) = pubfn(&server, &preload, &[]);
    assert!(ok, "{err}");
    let (ok, _, err) = pubfn(&server, &remove, &[]);
    assert!(ok, "{err}");
    let (ok, out, _) = pubfn(&server, &["packages", "list", "--tenant", "cli"], &[]);
    assert!(
        ok && !out.contains("greet ") && out.contains("greetdep"),
        "{out}"
    );
}
