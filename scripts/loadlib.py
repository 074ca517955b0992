"""Helpers shared by scripts/bench and scripts/soak: processes, HTTP, the admin API, RSS."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PUBFN_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pubfn")
ADMIN_KEY = "load-admin-key-" + os.urandom(8).hex()
NAME = Path(sys.argv[0]).name


def log(message):
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)


def run(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def http(method, url, body=None, token=None, timeout=120):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answers(url):
    """Whether `url` answers 200 yet (a server still starting refuses connections)."""
    try:
        return http("GET", url, timeout=2)[0] == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def admin(base, method, path, body=None):
    status, data = http(method, f"{base}/admin/v1{path}", body, ADMIN_KEY)
    if status >= 300:
        raise SystemExit(f"{NAME}: {method} {path} -> {status}: {data[:300]!r}")
    return json.loads(data) if data else None


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def wait_for(predicate, what, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"{NAME}: timed out waiting for {what}")


def build_release():
    log("building the Python runtime (cached by its inputs) and pubfn (release)")
    run(str(ROOT / "scripts" / "build-python-runtime"))
    run("cargo", "build", "--release", "--locked", "--manifest-path", str(ROOT / "Cargo.toml"))


def start_pubfn(work, extra=(), private_cache=False, wrap=()):
    """Starts the release build with its private PostgreSQL under `work`; returns (process, base URL).
    `wrap` prefixes the command (e.g. `taskset -c 1`, which execs the server in its place).

    With `private_cache`, snapshots and compiled code go under `work` too, so every tenant is
    built from scratch as on a fresh machine (the runtime itself still comes from the cache)."""
    env = dict(os.environ, PUBFN_ADMIN_KEY=ADMIN_KEY, PUBFN_LOG="warn")
    if private_cache:
        runtime = (CACHE / "runtime" / "current").resolve()
        env.update(PUBFN_CACHE_DIR=str(work / "cache"), PUBFN_RUNTIME=str(runtime))
    server = subprocess.Popen([*wrap, str(ROOT / "target/release/pubfn"), "serve", "--listen", "127.0.0.1:0",
                               "--data-dir", str(work / "data"), *extra],
                              env=env, stdout=open(work / "pubfn.out", "w"), stderr=open(work / "pubfn.err", "w"))
    wait_for(lambda: "pubfn listening on" in (work / "pubfn.out").read_text() or server.poll() is not None, "pubfn")
    if server.poll() is not None:
        raise SystemExit((work / "pubfn.err").read_text())
    base = re.search(r"pubfn listening on (\S+)", (work / "pubfn.out").read_text()).group(1)
    log(f"pubfn at {base}")
    return server, base
