"""Turns what a handler returned into (status, headers, body)."""

import base64
import datetime
import decimal
import json
import uuid

# Rows a handler returns untouched stay markers for the host to fill in (pq/_lazy.py).
from ._lazy import DriverEncoder


# Bound once, at snapshot time: a handler that monkey-patches json must not change how the
# SDK encodes its own responses.
_dumps = json.dumps


class BadReturn(Exception):
    """The handler returned something that cannot become an HTTP response."""


def _decimal_json(value):
    if not value.is_finite():
        return str(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _base64(value):
    return base64.b64encode(bytes(value)).decode("ascii")


# The encoder calls `_json_default` for every value JSON has no type for (a fetch's
# timestamps and numerics, in every row), so the exact types are found with one lookup.
_BY_TYPE = {
    datetime.datetime: datetime.datetime.isoformat,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    decimal.Decimal: _decimal_json,
    uuid.UUID: str,
    datetime.timedelta: datetime.timedelta.total_seconds,
    bytes: _base64,
    bytearray: _base64,
    memoryview: _base64,
}


def _json_default(value):
    convert = _BY_TYPE.get(value.__class__)
    if convert is not None:
        return convert(value)
    # Subclasses (e.g. a handler's own datetime subclass).
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return _decimal_json(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _base64(value)
    # numpy's scalars and arrays (a DataFrame's cells, `df["x"].sum()`), without importing
    # numpy: a tenant without the pandas flavour has none.
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _is_pandas(value):
    """A pandas DataFrame or Series, found without importing pandas."""
    module = type(value).__module__
    return (module == "pandas" or module.startswith("pandas.")) and \
        type(value).__name__ in ("DataFrame", "Series")


def to_json(value):
    try:
        return _dumps(value, cls=DriverEncoder, default=_json_default, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BadReturn(f"handler returned a value that is not JSON serializable: {exc}") from None
    except RecursionError:
        raise BadReturn("handler returned a value nested too deeply to encode as JSON") from None


def _headers(value):
    if value is None:
        return []
    items = value.items() if isinstance(value, dict) else value
    try:
        pairs = [(k, v) for k, v in items]
    except (TypeError, ValueError):
        raise BadReturn("response headers must be a dict or a list of (name, value) pairs") from None
    for name, val in pairs:
        if not isinstance(name, str) or not isinstance(val, (str, int)):
            raise BadReturn(f"response header {name!r} must map a str to a str")
    return [[name, str(val)] for name, val in pairs]


def convert(result):
    """Returns (status, headers, body) for a handler's return value."""
    status, headers = None, []
    if isinstance(result, tuple):
        if not 2 <= len(result) <= 3:
            raise BadReturn(f"handler returned a tuple of {len(result)} items; expected "
                            "(data, status) or (data, status, headers)")
        result, status, *rest = result
        # 1xx are the server's: they would have the client expect another response.
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise BadReturn(f"status must be an int from 200 to 599, not {status!r}")
        headers = _headers(rest[0] if rest else None)

    if result is None:
        body, content_type = b"", None
        status = 204 if status is None else status
    elif isinstance(result, str):
        body, content_type = result.encode("utf-8"), "text/plain; charset=utf-8"
    elif isinstance(result, (bytes, bytearray, memoryview)):
        body, content_type = bytes(result), "application/octet-stream"
    elif isinstance(result, (dict, list, int, float, bool)):
        body, content_type = to_json(result), "application/json"
    elif _is_pandas(result):
        # JSON records (`orient="records"`), dates as ISO 8601: what a client of the endpoint
        # would have got from the same rows as a list of dicts.
        from . import _frame
        try:
            body = _frame.to_records_json(result, _json_default)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadReturn(f"handler returned a DataFrame that is not JSON serializable: {exc}") from None
        content_type = "application/json"
    else:
        raise BadReturn(f"handler returned a value of type {type(result).__name__}; return a "
                        "dict, list, str, bytes, a pandas DataFrame or None")

    if content_type and not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ["content-type", content_type])
    return (200 if status is None else status), headers, body
