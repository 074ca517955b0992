"""A pubfn handler that runs pytest inside the sandbox, on the tests named in the request body.

Body: {"paths": [...], "args": [...], "collect": false}. Answers {"exit", "counts": {outcome:
n}, "failures": [{"test", "message"}]}: the suite's own outcomes, failures with the first line
of their reason; with "collect": true, only collects, and "tests" lists every test found as an
absolute path::name id that a later call can pass back in "paths".

While it runs, it writes `@@done <n>` to stdout after each test: if the sandbox ends the call
(a limit, a trap), the output it kept says which tests finished, so the next unfinished one
is the one that ended it.
"""
import json
import os
import tempfile

# The sandbox gives a handler no writable directory, and numpy's conftest asks for a temp dir
# at import. Naming one skips tempfile's probe; tests that write files there fail, and are
# counted as such.
tempfile.tempdir = "/tmp"

# The sandbox's filesystem has no "/" (only the runtime's directories are there), which is the
# working directory pytest starts in and returns to when it ends.
_chdir = os.chdir


def _chdir_except_to_root(path):
    try:
        _chdir(path)
    except FileNotFoundError:
        if os.fspath(path) != "/":
            raise


os.chdir = _chdir_except_to_root


class Collect:
    def __init__(self):
        self.counts = {}
        self.failures = []
        self.tests = []
        self.finished = 0

    def pytest_collection_finish(self, session):
        for item in session.items:
            name = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
            self.tests.append(f"{item.path}::{name}" if name else str(item.path))

    def _count(self, outcome):
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def pytest_runtest_logfinish(self, nodeid, location):
        self.finished += 1
        os.write(1, f"\n@@done {self.finished}\n".encode())

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                self._count("xfailed" if report.skipped else "xpassed")
            elif report.failed and report.when == "setup":
                self._count("error")
                self._fail(report)
            else:
                self._count(report.outcome)
                if report.failed:
                    self._fail(report)
        elif report.when == "teardown" and report.failed:
            self._count("error")
            self._fail(report)

    def pytest_collectreport(self, report):
        if report.failed:
            self._count("collection error")
            self._fail(report)

    def _fail(self, report):
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        self.failures.append(
            {"test": report.nodeid, "message": message.strip().splitlines()[0][:300] if message.strip() else ""}
        )


def handler():
    import pytest

    spec = json.loads(request.get_data() or b"{}")
    collect = Collect()
    args = [
        "-q",
        "-p", "no:cacheprovider",   # no writable directory for .pytest_cache
        "-p", "no:faulthandler",    # no signals, no threads to dump
        "-p", "no:logging",         # its file handler opens /dev/null, which the sandbox lacks
        "--capture=sys",            # fd capture needs temporary files
        "--assert=plain",           # rewriting caches bytecode beside the read-only tests
        "-o", "addopts=",
        *(["--collect-only"] if spec.get("collect") else []),
        *spec.get("args", []),
        *spec["paths"],
    ]
    code = pytest.main(args, plugins=[collect])
    answer = {"exit": int(code), "counts": collect.counts, "failures": collect.failures}
    if spec.get("collect"):
        answer["tests"] = collect.tests
    return answer
