"""Scenario s of scripts/bench: do strict (b) and warm (c) hellos scale with cores?

A server of its own is started twice: pinned with taskset to one core, then to two (the
sandbox's guest turns follow its affinity mask). wrk runs pinned to core 0 with one thread. For
each of b and c it reports req/s, the server's CPU time per request (user + system, from
/proc/<pid>/stat), and TLB-shootdown interrupts per request (/proc/interrupts, every core):
per-request costs that grow with cores are what a process-wide TLB shootdown or a global lock
would show, whatever the load generator's share of the machine.

On a 2-core machine the load generator shares core 0 with the two-core server, so the req/s
scaling factor understates what the server would do alone; the per-request CPU and shootdown
figures do not depend on that.
"""

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from loadlib import admin, http, log, start_pubfn

HELLO = '''def handler():
    return "hello"
'''


def cpu_seconds(pid):
    """User + system CPU of process `pid` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tlb_shootdowns():
    """TLB-shootdown interrupts received so far, summed over cores (0 where not reported)."""
    for line in Path("/proc/interrupts").read_text().splitlines():
        label, _, rest = line.partition(":")
        if label.strip() == "TLB":
            return sum(int(v) for v in rest.split() if v.isdigit())
    return 0


def wrk_pinned(url, token, duration, connections, client_cpu):
    """wrk with one thread on `client_cpu`; returns req/s and the requests it completed."""
    args = ["taskset", "-c", client_cpu, "wrk", "-t1", f"-c{connections}", "-H", f"Authorization: Bearer {token}"]
    subprocess.run(args + ["-d2s", url], check=True, capture_output=True)
    out = subprocess.run(args + [f"-d{duration}s", url], check=True, capture_output=True, text=True).stdout
    total = int(out.split(" requests in ")[0].split()[-1])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return rps, total


def measure(server_cpus, args):
    """b and c on a server pinned to `server_cpus`: {key: {rps, cpu_us_per_request, tlb_per_request}}."""
    work = Path(tempfile.mkdtemp(prefix="pubfn-bench-s-"))
    os.chmod(work, 0o755)
    server = None
    try:
        server, base = start_pubfn(work, ["--tenant-max-concurrency", "1024"], wrap=["taskset", "-c", server_cpus])
        admin(base, "POST", "/tenants", {"name": "cores"})
        for name, isolation in [("hello", "strict"), ("hello-warm", "warm")]:
            admin(base, "PUT", f"/tenants/cores/endpoints/{name}",
                  {"method": "GET", "route": f"/{name}", "script": HELLO, "isolation": isolation})
        token = admin(base, "POST", "/tenants/cores/tokens", {"name": "s"})["token"]
        results = {}
        for key, route in [("b", "hello"), ("c", "hello-warm")]:
            url = f"{base}/cores/{route}"
            assert http("GET", url, token=token)[0] == 200
            runs = []
            for round_number in range(1, max(args.rounds, 1) + 1):
                log(f"s: {key} on cpus {server_cpus} (round {round_number} of {args.rounds})")
                cpu0, tlb0 = cpu_seconds(server.pid), tlb_shootdowns()
                rps, total = wrk_pinned(url, token, args.duration, args.connections, "0")
                cpu1, tlb1 = cpu_seconds(server.pid), tlb_shootdowns()
                # The warm-up's requests are in the CPU and TLB deltas too: counted as a share of
                # the measured ones would overstate; wrk_pinned's warm-up is 2 s of the same rate.
                requests = total * (args.duration + 2) / args.duration
                runs.append({"rps": rps, "cpu_us_per_request": (cpu1 - cpu0) * 1e6 / requests,
                             "tlb_per_request": (tlb1 - tlb0) / requests})
            results[key] = {field: round(statistics.median(r[field] for r in runs), 2) for field in runs[0]}
        return results
    finally:
        if server:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


def scenario_s(args):
    """results["s"]: b and c on one core and on two, and the scaling factors."""
    cores = os.cpu_count() or 1
    if cores < 2:
        raise SystemExit("bench s: needs at least 2 cores")
    one, two = measure("1", args), measure("0,1", args)
    # What two cores would give the server alone: 2x, less what each request costs more in CPU
    # on two cores than on one (a shared cost: lock contention, shootdowns, cache lines moving).
    def per_cpu(key):
        return round(2 * one[key]["cpu_us_per_request"] / two[key]["cpu_us_per_request"], 2)
    return {"one_core": one, "two_cores": two,
            "scaling_b": round(two["b"]["rps"] / one["b"]["rps"], 2),
            "scaling_c": round(two["c"]["rps"] / one["c"]["rps"], 2),
            "cpu_scaling_b": per_cpu("b"), "cpu_scaling_c": per_cpu("c"),
            "what": "server pinned to core 1, then cores 0-1; wrk -t1 pinned to core 0 (shares it in the second); "
                    "CPU and TLB shootdowns per request from /proc"}
