"""Runs test files inside the sandbox with `pubfn run`, as scripts/sandbox-test-suites asks.

    drive.py PUBFN RUNTIME RESULTS_DIR SITE FILE...

Each file is collected in one call, then its tests run in chunks of CHUNK per call. When the
sandbox ends a call (a test past the memory or time limit, a trap), the test it was running is
the first one the call did not report finished (run_pytest.py writes a line per test): that
test is counted as "ended by the sandbox" with the sandbox's reason, the finished ones are run
again in a call of their own for their outcomes, and the rest of the chunk goes on. One JSON
per file in RESULTS_DIR (see summarise.py).
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

CHUNK = 250
HERE = pathlib.Path(__file__).parent
# Per call: a test that runs away costs at most this, once.
LIMITS = ["--cpu-ms", "300000", "--wall-ms", "300000", "--memory-mb", "1024"]


def call(pubfn, runtime, spec):
    """One handler call: its JSON answer, or {"ended": reason, "finished": n} if the sandbox
    ended it after n tests had finished."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        json.dump(spec, body)
        body.flush()
        done = subprocess.run(
            [pubfn, "run", "--log-format", "json", "--runtime", runtime, "--preload", "pandas",
             *LIMITS, "-X", "POST", "-d", "@" + body.name, str(HERE / "run_pytest.py")],
            capture_output=True, text=True, errors="replace")
    if done.returncode == 0:
        return json.loads(done.stdout.split("\n\n", 1)[1])
    errors = [line[line.index("error: "):] for line in done.stderr.splitlines() if "error: " in line]
    finished = [int(n) for n in re.findall(r"^@@done (\d+)$", done.stderr, re.MULTILINE)]
    return {"ended": errors[-1][len("error: "):] if errors else f"exit {done.returncode}",
            "finished": max(finished, default=0)}


def merge(total, part):
    for outcome, n in part["counts"].items():
        total["counts"][outcome] = total["counts"].get(outcome, 0) + n
    total["failures"].extend(part["failures"])


def run_tests(pubfn, runtime, tests, total):
    while tests:
        answer = call(pubfn, runtime, {"paths": tests})
        if "ended" not in answer:
            merge(total, answer)
            return
        finished = answer["finished"]
        if finished:
            run_tests(pubfn, runtime, tests[:finished], total)
        merge(total, {"counts": {"ended by the sandbox": 1},
                      "failures": [{"test": tests[finished], "message": answer["ended"]}]})
        tests = tests[finished + 1:]


def main(pubfn, runtime, results, site, *files):
    for file in files:
        path = f"/usr/local/{site}/{file}"
        collected = call(pubfn, runtime, {"paths": [path], "collect": True})
        if "ended" in collected:
            result = {"run_failed": collected["ended"]}
        else:
            result = {"counts": {}, "failures": []}
            # Collection errors count; collected tests run below.
            merge(result, {"counts": {k: v for k, v in collected["counts"].items()
                                      if k == "collection error"},
                           "failures": collected["failures"]})
            tests = collected["tests"]
            for start in range(0, len(tests), CHUNK):
                run_tests(pubfn, runtime, tests[start:start + CHUNK], result)
        out = pathlib.Path(results) / (file.replace("/", "__") + ".json")
        out.write_text(json.dumps(result))
        subprocess.run([sys.executable, str(HERE / "summarise.py"), "--one", file, str(out)],
                       stdout=sys.stderr, check=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
