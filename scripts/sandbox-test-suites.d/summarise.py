"""Summaries of scripts/sandbox-test-suites' results.

`summarise.py --one FILE RESULT.json`: one line for one test file.
`summarise.py DIR`: per suite (numpy, pandas), the outcome counts, the files whose run failed
(a limit, a trap), and the commonest failure messages with a test that shows each.
"""
import collections
import json
import pathlib
import sys


def line(name, result):
    if "run_failed" in result:
        return f"{name}: run failed: {result['run_failed']}"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result["counts"].items()))
    return f"{name}: {counts or 'no tests'}"


def main(argv):
    if argv[0] == "--one":
        print(line(argv[1], json.loads(pathlib.Path(argv[2]).read_text())))
        return
    suites = collections.defaultdict(lambda: {"counts": collections.Counter(), "files": 0,
                                              "run_failed": [], "messages": collections.Counter(),
                                              "example": {}})
    for path in sorted(pathlib.Path(argv[0]).glob("*.json")):
        name = path.stem.replace("__", "/")
        suite = suites[name.split("/")[0]]
        suite["files"] += 1
        result = json.loads(path.read_text())
        if "run_failed" in result:
            suite["run_failed"].append(line(name, result))
            continue
        suite["counts"].update(result["counts"])
        for failure in result["failures"]:
            message = failure["message"][:120]
            suite["messages"][message] += 1
            suite["example"].setdefault(message, failure["test"])
    for name, suite in sorted(suites.items()):
        counts = suite["counts"]
        ran = sum(counts.values())
        print(f"## {name}: {suite['files']} files, {ran} outcomes")
        for outcome, n in counts.most_common():
            print(f"  {outcome:18} {n:6}  ({100 * n / max(ran, 1):.1f} %)")
        for failed in suite["run_failed"]:
            print(f"  {failed}")
        if suite["messages"]:
            print("  commonest failure messages (count, message, one such test):")
            for message, n in suite["messages"].most_common(25):
                print(f"    {n:5}  {message}\n           e.g. {suite['example'][message]}")


if __name__ == "__main__":
    main(sys.argv[1:])
