"""pq.dbconnect: the handle on a tenant's databases. The host does all the work; values come
back as JSON and are turned into Python values by column type here."""

import base64
import datetime
import decimal
import json

from . import _abi
from .errors import DatabaseError

_loads = json.loads
_Decimal = decimal.Decimal

_INTS = {"int2", "int4", "int8", "oid"}
# Types whose JSON never holds a number with a fraction, so their values need no look.
_NEVER_FRACTIONAL = {"text", "varchar", "bpchar", "char", "name", "bool", "uuid", "date", "time",
                     "timetz", "timestamp", "timestamptz", "interval", "inet", "cidr",
                     "macaddr", "xml", *_INTS}
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


def _plain_json(value):
    """A json/jsonb value with its numbers as int or float, as json.loads would give them."""
    if isinstance(value, _Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    return value


def _converter(pg_type, python_types):
    base = pg_type.lstrip("_")
    if base in ("json", "jsonb"):
        return _plain_json
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
    rows = result["rows"]
    if not rows:
        return rows
    # Column by column, and only the columns that need it: this runs inside the interpreter
    # for every value of every row, so it is the fetch's main cost in the guest.
    for column in result["columns"]:
        name = column["name"]
        convert = _converter(column["type"], python_types)
        if convert is None:
            if column["type"] in _NEVER_FRACTIONAL:
                continue
            convert = _untyped_number
        for row in rows:
            value = row[name]
            if value is not None:
                row[name] = convert(value)
    if fillna_with is not None:
        for row in rows:
            for name, value in row.items():
                if value is None:
                    row[name] = fillna_with
    return rows


def _untyped_number(value):
    """A non-integer number of a column without a converter is a float, as json.loads gives."""
    return float(value) if value.__class__ is _Decimal else value


def _jsonable(value):
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (datetime.timedelta,)):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if type(value).__name__ == "UUID":
        return str(value)
    return value


def _pk_fields(pk):
    """A pk is a value of the table's one-column primary key, or a dict of column -> value."""
    if isinstance(pk, dict):
        return {"pk_columns": {k: _jsonable(v) for k, v in pk.items()}}
    return {"pk": _jsonable(pk)}


def _record(record):
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict of column -> value, not {type(record).__name__}")
    return {k: _jsonable(v) for k, v in record.items()}


class _Transaction:
    """`with dbconn.transaction(db):` commits when the block ends, rolls back on an exception."""

    def __init__(self, connection, db):
        self._connection = connection
        self._db = db

    def __enter__(self):
        self._connection._call({"op": "begin", "db": self._db})
        return self._connection

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._connection._call({"op": "commit", "db": self._db})
        else:
            try:
                self._connection._call({"op": "rollback", "db": self._db})
            except DatabaseError:
                pass  # the block's own exception is the one to see
        return False


class DatabaseConnection:
    """A connection to one of the tenant's named databases."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<pq.DatabaseConnection {self.name!r}>"

    def _call(self, request):
        request["connection"] = self.name
        return _abi.db_call(request)

    def _rows(self, request, python_types, fillna_with):
        request["connection"] = self.name
        return _rows(_abi.call_raw_db(request), python_types, fillna_with)

    def fetch(self, db, schema=None, table=None, *, where=None, order_by=None, limit=None,
              offset=None, query=None, params=None, fillna_with=None, enable_python_types=True):
        """Rows of `schema.table` (filtered by `where`, a dict of column → value), or of
        `query='... %s ...'` with bound `params=[...]`, as a list of dicts."""
        options = {"where": {k: _jsonable(v) for k, v in (where or {}).items()} or None,
                   "order_by": order_by, "limit": limit, "offset": offset, "query": query,
                   "params": [_jsonable(p) for p in params] if params is not None else None}
        request = {"op": "fetch", "db": db, "schema": schema, "table": table, "options": options}
        return self._rows(request, enable_python_types, fillna_with)

    def _one(self, request, enable_python_types, fillna_with):
        rows = self._rows(request, enable_python_types, fillna_with)
        return rows[0] if rows else None

    def insert(self, db, schema, table, record, *, fillna_with=None, enable_python_types=True):
        """Inserts `record` (a dict of column → value) and returns the inserted row."""
        request = {"op": "insert", "db": db, "schema": schema, "table": table,
                   "record": _record(record)}
        return self._one(request, enable_python_types, fillna_with)

    def update(self, db, schema, table, pk, record, *, fillna_with=None,
               enable_python_types=True):
        """Updates the row whose primary key is `pk` and returns it (None if there is none)."""
        request = {"op": "update", "db": db, "schema": schema, "table": table,
                   "record": _record(record), **_pk_fields(pk)}
        return self._one(request, enable_python_types, fillna_with)

    def upsert(self, db, schema, table, pk, record, *, fillna_with=None,
               enable_python_types=True):
        """Inserts the row with primary key `pk`, or updates the columns of `record` in it if
        it exists; returns the row."""
        request = {"op": "upsert", "db": db, "schema": schema, "table": table,
                   "record": _record(record or {}), **_pk_fields(pk)}
        return self._one(request, enable_python_types, fillna_with)

    def delete(self, db, schema, table, pk):
        """Deletes the row whose primary key is `pk`; returns the number of rows deleted."""
        request = {"op": "delete", "db": db, "schema": schema, "table": table, **_pk_fields(pk)}
        return self._call(request)["rowcount"]

    def execute(self, db, query, params=None):
        """Runs one statement with bound `params`; returns `{"rowcount": n}`."""
        if not isinstance(query, str):
            raise TypeError("query must be a str")
        return self._call({"op": "execute", "db": db, "query": query,
                           "params": [_jsonable(p) for p in params] if params is not None else None})

    def transaction(self, db):
        """`with dbconn.transaction(db): ...` runs the block's calls on `db` in one
        transaction: committed at the end of the block, rolled back if it raises. A request
        that ends with the transaction still open rolls it back."""
        return _Transaction(self, db)

def dbconnect(name):
    """Opens the tenant's database `name`; raises pq.DatabaseNotFound for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"dbconnect() takes a database name (str), not {type(name).__name__}")
    _abi.db_call({"op": "connect", "connection": name})
    return DatabaseConnection(name)
