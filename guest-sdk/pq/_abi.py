"""Typed wrappers over the `_pq` host calls (the wire is described in guest-sdk/ABI.md)."""

import json

import _pq

from .errors import DatabaseError, HostError, PqError

# Bound once, at snapshot time, so a handler patching json cannot break the wire.
_dumps, _loads = json.dumps, json.loads
_call = _pq.call
_HostErrorRaw = _pq.HostError


def call(op, data=b""):
    """Runs host operation `op`, mapping a failure to the SDK's exception for it."""
    try:
        return _call(op, data)
    except _HostErrorRaw as exc:
        code, message = exc.args
        raise HostError(code, message) from None


def call_json(op, value):
    """Sends `value` as JSON and decodes a JSON result (None for an empty one)."""
    raw = call(op, _dumps(value, separators=(",", ":")).encode())
    return _loads(raw) if raw else None


def db_call(request):
    """A database call: the host's errors become pq.DatabaseError and its subclasses."""
    try:
        return call_json(_pq.PQ_OP_DB, request)
    except HostError as exc:
        raise DatabaseError.from_host(exc) from None


def call_raw_db(request):
    """A database call whose JSON result is parsed by the caller (to keep numerics exact)."""
    try:
        return call(_pq.PQ_OP_DB, _dumps(request, separators=(",", ":")).encode())
    except HostError as exc:
        raise DatabaseError.from_host(exc) from None


def request_head():
    return _loads(call(_pq.PQ_OP_REQUEST_HEAD))


def request_body():
    return call(_pq.PQ_OP_REQUEST_BODY)


def script_source():
    return call(_pq.PQ_OP_SCRIPT_SOURCE).decode("utf-8")


def send_response_head(status, headers):
    call_json(_pq.PQ_OP_RESPONSE_HEAD, {"status": status, "headers": headers})


def loads(raw):
    """JSON from the host, with the json module as it was at snapshot time."""
    return _loads(raw)


def report_error(report):
    """Tells the host why this call failed. Never raises: the report is the last word."""
    try:
        call_json(_pq.PQ_OP_ERROR_REPORT, report)
    except PqError:
        pass


__all__ = ["call", "call_json", "call_raw_db", "db_call", "request_head", "request_body", "script_source",
           "send_response_head", "report_error", "loads"]
