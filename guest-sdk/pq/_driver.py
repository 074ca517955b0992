"""The Python half of the reactor driver: python-runtime/driver.c calls these three functions.

Each returns 0 on success, or 1 after telling the host why it failed (PQ_OP_ERROR_REPORT).
"""

import collections
import linecache
import marshal
import os
import sys
import traceback
import types

# Imported here so that they are part of the snapshot: every instance starts with them loaded.
import base64  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import hashlib  # noqa: F401
import json  # noqa: F401
import random
import re  # noqa: F401
import urllib.parse  # noqa: F401

import _pq

# pq first: importing it routes http.client through the host, which must happen before
# urllib.request is imported (pq/_httpclient.py), and patches requests' adapter.
import pq as _pq_package

import http.client  # noqa: E402,F401
import urllib.request  # noqa: E402
import requests  # noqa: E402  (bundled by scripts/build-python-runtime)

from . import _abi, _lazy, _multidict, _request, _response
from .errors import DatabaseUnavailable

SCRIPT_NAME = "handler.py"

# Where the host preopens the tenant's package set, if it has one (src/sandbox/packages.rs,
# GUEST_PACKAGES_DIR): `site/` holds its modules and wheels, `preload.json` what the snapshot
# imports.
PACKAGES_DIR = "/usr/local/tenant"
PACKAGES_SITE = PACKAGES_DIR + "/site"

# Bound at snapshot time, like the rest of the SDK's own tools.
_marshal_loads, _marshal_dumps = marshal.loads, marshal.dumps

_handler = None
_takes_request = False

# What the entry points return to the host (PQ_DRIVER_* in pq_abi.h).
_OK, _REPORTED = _pq.PQ_DRIVER_OK, _pq.PQ_DRIVER_REPORTED


def _report(kind, message, **extra):
    _abi.report_error({"kind": kind, "message": message, **extra})
    return _REPORTED


# Frames kept in a reported traceback: runaway recursion makes millions of them.
MAX_TRACEBACK_FRAMES = 40


def _script_traceback(exc):
    """The traceback trimmed to the script's own frames (the SDK's frames mean nothing to the
    tenant and show our internals), and to the innermost MAX_TRACEBACK_FRAMES of those."""
    # Only the kept frames get a FrameSummary (4 us each here): a failure 100,000 frames deep
    # spent 0.44 s of the tenant's CPU budget on summaries it then threw away.
    kept = collections.deque(maxlen=MAX_TRACEBACK_FRAMES)
    total = 0
    tb = exc.__traceback__
    while tb is not None:
        if _is_tenant_file(tb.tb_frame.f_code.co_filename):
            total += 1
            kept.append(tb)
        tb = tb.tb_next
    frames = [traceback.FrameSummary(_shown_name(tb.tb_frame.f_code.co_filename), tb.tb_lineno,
                                     tb.tb_frame.f_code.co_name)
              for tb in kept]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    if total > len(frames):
        lines.append(f"  [{total - len(frames)} earlier frames omitted]\n")
    lines += traceback.format_list(list(frames))
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _is_tenant_file(filename):
    """The script and the tenant's own packages are the tenant's; the SDK and stdlib are not."""
    return filename == SCRIPT_NAME or filename.startswith(PACKAGES_SITE + "/")


def _shown_name(filename):
    # `helpers/text.py`, as the tenant named it, without the sandbox's mount point.
    if filename.startswith(PACKAGES_SITE + "/"):
        return filename[len(PACKAGES_SITE) + 1:]
    return filename


def _report_exception(exc, kind="exception"):
    if isinstance(exc, MemoryError):
        kind = "memory"
    elif isinstance(exc, RecursionError):
        kind = "recursion"
    elif isinstance(exc, SystemExit):
        kind = "exit"
    elif isinstance(exc, DatabaseUnavailable):
        kind = "db_unavailable"
    try:
        message = f"{type(exc).__name__}: {exc}"
        trace = _script_traceback(exc)
    except BaseException:  # a hostile __str__ or a MemoryError while formatting
        message, trace = type(exc).__name__, ""
    return _report(kind, message, type=type(exc).__name__, traceback=trace)


def _source():
    source = _abi.script_source()
    # Lets tracebacks quote the script's lines although it is not a file.
    linecache.cache[SCRIPT_NAME] = (len(source), None, source.splitlines(True), SCRIPT_NAME)
    return source


def _compile():
    return compile(_source(), SCRIPT_NAME, "exec", dont_inherit=True)


def _code():
    """The script's code object: the one an earlier instance of this endpoint version
    compiled (ABI ops 7 and 8), or compiled here and offered to the next instances."""
    cached = _abi.call(_pq.PQ_OP_SCRIPT_CODE)
    if cached:
        try:
            code = _marshal_loads(cached)
            _source()
            return code
        except Exception:
            pass  # not a code object after all: compile it afresh
    code = _compile()
    try:
        offer = _marshal_dumps(code)
    except Exception:
        offer = b""
    _abi.call(_pq.PQ_OP_SCRIPT_CODE_OFFER, offer)
    return code


def _report_syntax(exc):
    return _report("syntax", f"{type(exc).__name__}: {exc.msg}", type=type(exc).__name__,
                   line=exc.lineno, column=exc.offset, text=(exc.text or "").rstrip("\n"))


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def compile_script():
    try:
        _compile()
    except SyntaxError as exc:
        return _report_syntax(exc)
    except BaseException as exc:
        return _report_exception(exc)
    return _OK


def _takes_arguments(fn):
    code = getattr(fn, "__code__", None)
    if code is not None:
        bound = 1 if isinstance(fn, types.MethodType) else 0
        return code.co_argcount - bound > 0 or bool(code.co_flags & 0x04)  # 0x04: *args
    import inspect

    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return False


def load_script():
    global _handler, _takes_request
    # Every instance is a copy of one snapshot: give `random` this instance's own entropy.
    # 256 bits of it: `random.seed()` without an argument reads 2,496 bytes from the host,
    # which showed in profiles of strict requests, and gives a non-cryptographic generator
    # nothing 256 bits do not.
    random.seed(int.from_bytes(os.urandom(32), "little"))
    try:
        code = _code()
    except SyntaxError as exc:
        return _report_syntax(exc)
    except BaseException as exc:
        return _report_exception(exc)
    module = types.ModuleType("handler")
    module.__file__ = SCRIPT_NAME
    # What Peliqan's handlers find without importing anything.
    module.request = _request.request
    module.pq = _pq_package
    module.RUN_CONTEXT = _pq_package.RUN_CONTEXT
    sys.modules["handler"] = module
    try:
        exec(code, module.__dict__)
    except BaseException as exc:
        _flush()
        return _report_exception(exc)
    handler = module.__dict__.get("handler")
    if not callable(handler):
        return _report("no_handler", "the script defines no function `handler`")
    _handler = handler
    _takes_request = _takes_arguments(handler)
    _flush()
    return _OK


def handle_request():
    try:
        return _handle_request()
    finally:
        # Rows kept past the call (a warm instance's global) become dicts while their
        # handle still means this call's result.
        try:
            _lazy.end_request()
        except BaseException:
            pass


def _handle_request():
    if _handler is None:
        return _report("no_handler", "no handler is loaded")
    _lazy.begin_request()
    try:
        req = _request.Request(_abi.request_head(), _abi.request_body())
        _request.set_current(req)
        _pq_package.DW_NAME = req.warehouse
        result = _handler(req.as_dict()) if _takes_request else _handler()
        status, headers, body = _response.convert(result)
    except _response.BadReturn as exc:
        _flush()
        return _report("return", str(exc))
    except _multidict.BadRequest as exc:
        _flush()
        return _report("client_error", str(exc), status=exc.status)
    except BaseException as exc:
        _flush()
        return _report_exception(exc)
    finally:
        _request.set_current(None)
    _flush()
    try:
        _abi.send_response_head(status, headers)
        _lazy.send_body(body)
    except BaseException as exc:
        return _report("return", f"the host refused the response: {exc}")
    return _OK


def _warm_up():
    """Runs once, at snapshot time: exercises the paths every request takes, so the lazily
    built state behind them (the compiler's AST types, codecs, regex caches) is part of the
    snapshot instead of being rebuilt by every fresh instance."""
    code = compile("def handler(request=None):\n    return {'ok': [1, 'a', None]}\n",
                   SCRIPT_NAME, "exec", dont_inherit=True)
    namespace = {}
    exec(code, namespace)
    req = _request.Request({"method": "GET", "url": "http://h/p?a=1", "path": "/p",
                            "query_string": "a=1", "headers": [["content-type", "application/json"]],
                            "path_params": {}}, b'{"x": 1}')
    req.get_json()
    req.as_dict()
    _response.convert((namespace["handler"](), 200, {"x-a": "b"}))
    _response.convert({"d": datetime.date(2000, 1, 1), "n": decimal.Decimal("1.5")})
    json.loads(json.dumps({"a": [1.5, True, None, "é"]}))
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        _script_traceback(exc)
    linecache.cache.pop(SCRIPT_NAME, None)


# The outbound-HTTP libraries are imported above but not exercised here. Running requests,
# urlopen and pq.connect once against a canned answer made a fresh instance's first
# requests.get() 1.8 ms faster, but the garbage it left made the snapshot's heap sparse, and
# every strict request of every tenant then wrote into more of its pages: `scripts/bench
# --only b,e` (hello, strict, against native) measured 0.76 with it and 0.91 without. Only
# handlers that call out pay the first-use cost, once per instance.


def _load_packages():
    """Runs once, at snapshot time, when the tenant has packages: puts them on the path (after
    the stdlib and the runtime's own packages, which no tenant name may shadow anyway) and
    imports the preload list, so that a request using them finds them imported. A module that
    raises is reported with its traceback, and the snapshot is not taken."""
    if not os.path.isdir(PACKAGES_SITE):
        return
    sys.path.append(PACKAGES_SITE)
    with open(PACKAGES_DIR + "/preload.json", "rb") as f:
        preload = json.loads(f.read())
    for name in preload:
        try:
            __import__(name)
        except BaseException as exc:
            _flush()
            try:
                message = f"preloading {name!r}: {type(exc).__name__}: {exc}"
                trace = _script_traceback(exc)
            except BaseException:
                message, trace = f"preloading {name!r}: {type(exc).__name__}", ""
            _report("preload", message, type=type(exc).__name__, traceback=trace)
            raise
    _flush()


# What the warm-up leaves alive becomes part of the snapshot; python-runtime/driver.c then
# makes all of it immortal, out of reference counting's and the collector's reach.
_warm_up()
_load_packages()
