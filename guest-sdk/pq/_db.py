"""pq.dbconnect: the handle on a tenant's databases. The host does all the work; values come
back as JSON and are turned into Python values by column type here."""

import base64
import datetime
import decimal
import json

from . import _abi

_loads = json.loads
_Decimal = decimal.Decimal

_INTS = {"int2", "int4", "int8", "oid"}
_FLOATS = {"float4", "float8"}


def _decimal(value):
    return value if isinstance(value, _Decimal) else _Decimal(str(value))


def _number(value):
    """A numeric as a JSON-friendly number: int when integral, else float."""
    value = _decimal(value)
    if value.is_finite() and value == value.to_integral_value():
        return int(value)
    return float(value)


def _parse_timestamp(text):
    return datetime.datetime.fromisoformat(text)


_PYTHON_TYPES = {
    "timestamptz": _parse_timestamp,
    "timestamp": _parse_timestamp,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
}


def _converter(pg_type, python_types):
    base = pg_type.lstrip("_")
    if base in _FLOATS:
        scalar = float
    elif base in _INTS:
        scalar = int
    elif base == "numeric":
        scalar = _decimal if python_types else _number
    elif base == "bytea":
        scalar = lambda v: bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("\\x") else v  # noqa: E731
    elif python_types and base in _PYTHON_TYPES:
        scalar = _PYTHON_TYPES[base]
    else:
        return None
    if pg_type.startswith("_"):
        def convert_list(value):
            return [convert_list(v) if isinstance(v, list) else (None if v is None else scalar(v)) for v in value]
        return convert_list
    return scalar


def _rows(raw, python_types, fillna_with):
    """Rows of a fetch result as dicts; numerics are Decimal (float without python types)."""
    result = _loads(raw, parse_float=_Decimal)
    converters = {}
    for column in result["columns"]:
        convert = _converter(column["type"], python_types)
        if convert is not None:
            converters[column["name"]] = convert
    rows = result["rows"]
    for row in rows:
        for name, value in row.items():
            if value is None:
                if fillna_with is not None:
                    row[name] = fillna_with
            elif name in converters:
                row[name] = converters[name](value)
            elif isinstance(value, _Decimal):
                row[name] = float(value)  # a JSON column's non-integer number
    return rows


def _jsonable(value):
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


class DatabaseConnection:
    """A connection to one of the tenant's named databases."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<pq.DatabaseConnection {self.name!r}>"

    def fetch(self, db, schema=None, table=None, *, where=None, order_by=None, limit=None,
              offset=None, query=None, params=None, fillna_with=None, enable_python_types=True):
        """Rows of `schema.table` (filtered by `where`, a dict of column → value), or of
        `query='... %s ...'` with bound `params=[...]`, as a list of dicts."""
        options = {"where": {k: _jsonable(v) for k, v in (where or {}).items()} or None,
                   "order_by": order_by, "limit": limit, "offset": offset, "query": query,
                   "params": [_jsonable(p) for p in params] if params is not None else None}
        request = {"op": "fetch", "connection": self.name, "db": db, "schema": schema,
                   "table": table, "options": options}
        raw = _abi.call_raw_db(request)
        return _rows(raw, enable_python_types, fillna_with)


def dbconnect(name):
    """Opens the tenant's database `name`; raises pq.DatabaseNotFound for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"dbconnect() takes a database name (str), not {type(name).__name__}")
    _abi.db_call({"op": "connect", "connection": name})
    return DatabaseConnection(name)
