"""pq.dbconnect: the handle on a tenant's databases. The host does all the work; values come
back as JSON and are turned into Python values by column type here."""

import base64
import datetime
import decimal

from . import _abi, _frame, _lazy, _response, _rows
from .errors import DatabaseError


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

    def _rows(self, request, python_types, fillna_with, **options):
        request["connection"] = self.name
        return _rows.rows(_abi.call_raw_db(request), python_types, fillna_with, **options)

    def fetch(self, db_name, schema_name=None, table_name=None, query=None, df=False,
              fillna_with=None, fillnat_with=None, enable_python_types=True,
              enable_datetime_as_string=True, tz="UTC", *, where=None, order_by=None,
              limit=None, offset=None, params=None, schema=None, table=None):
        """Rows of `schema_name.table_name`, or of `query` (with `%s` placeholders bound to
        `params`), as a list of dicts, with Peliqan's options: NULLs filled with
        `fillna_with` (`fillnat_with` for date and time columns), numerics as Decimal with
        `enable_python_types` (else int or float), dates and timestamps as ISO 8601 text with
        `enable_datetime_as_string` (else datetime objects), timestamps with a time zone in
        `tz`. Extensions of pubfn's: `where` (column -> value), `order_by`, `limit`, `offset`.
        `schema`/`table` are accepted for `schema_name`/`table_name`. With `df=True`, a pandas
        DataFrame (the tenant preloads pandas; dtypes as pq/_frame.py says)."""
        options = {"where": {k: _jsonable(v) for k, v in (where or {}).items()} or None,
                   "order_by": order_by, "limit": limit, "offset": offset, "query": query or None,
                   "params": [_jsonable(p) for p in params] if params is not None else None}
        request = {"op": "fetch", "db": db_name, "schema": schema_name or schema,
                   "table": table_name or table, "options": options}
        if df:
            # Column by column from the host, each column one array (pq/_frame.py).
            request["connection"] = self.name
            request["layout"] = "columns"
            return _frame.frame(_abi.call_raw_db(request), python_types=enable_python_types,
                                fillna_with=fillna_with, fillnat_with=fillnat_with, tz=tz)
        convert = dict(python_types=enable_python_types, fillna_with=fillna_with,
                       fillnat_with=fillnat_with, datetime_as_string=enable_datetime_as_string,
                       tz=tz)
        render = _render_options(**convert)
        if render is None:
            return self._rows(request, enable_python_types, fillna_with, fillnat_with=fillnat_with,
                              datetime_as_string=enable_datetime_as_string, tz=tz)
        request["connection"] = self.name
        request["render"] = render
        raw = _abi.call_raw_db(request)
        if not raw.startswith(b'{"handle":'):
            return _rows.rows(raw, **convert)  # the host left these rows to Python
        kept = _abi.loads(raw)
        return _lazy.Rows(kept["handle"], kept["count"], lambda raw: _rows.rows(raw, **convert))

    def _one(self, request, enable_python_types, fillna_with):
        rows = self._rows(request, enable_python_types, fillna_with)
        return rows[0] if rows else None

    def insert(self, db_name, schema_name, table_name, record, *, fillna_with=None,
               enable_python_types=True):
        """Inserts `record` (a dict of column → value) and returns the inserted row."""
        request = {"op": "insert", "db": db_name, "schema": schema_name, "table": table_name,
                   "record": _record(record)}
        return self._one(request, enable_python_types, fillna_with)

    def update(self, db_name, schema_name, table_name, pk, record, *, fillna_with=None,
               enable_python_types=True):
        """Updates the row whose primary key is `pk` and returns it (None if there is none)."""
        request = {"op": "update", "db": db_name, "schema": schema_name, "table": table_name,
                   "record": _record(record), **_pk_fields(pk)}
        return self._one(request, enable_python_types, fillna_with)

    def upsert(self, db_name, schema_name, table_name, pk, record, *, fillna_with=None,
               enable_python_types=True):
        """Inserts the row with primary key `pk`, or updates the columns of `record` in it if
        it exists; returns the row."""
        request = {"op": "upsert", "db": db_name, "schema": schema_name, "table": table_name,
                   "record": _record(record or {}), **_pk_fields(pk)}
        return self._one(request, enable_python_types, fillna_with)

    def delete(self, db_name, schema_name, table_name, pk):
        """Deletes the row whose primary key is `pk`; returns the number of rows deleted."""
        request = {"op": "delete", "db": db_name, "schema": schema_name, "table": table_name,
                   **_pk_fields(pk)}
        return self._call(request)["rowcount"]

    def execute(self, db_name, query, params=None):
        """Runs one statement with bound `params`; returns `{"rowcount": n}`."""
        if not isinstance(query, str):
            raise TypeError("query must be a str")
        return self._call({"op": "execute", "db": db_name, "query": query,
                           "params": [_jsonable(p) for p in params] if params is not None else None})

    def transaction(self, db):
        """`with dbconn.transaction(db): ...` runs the block's calls on `db` in one
        transaction: committed at the end of the block, rolled back if it raises. A request
        that ends with the transaction still open rolls it back."""
        return _Transaction(self, db)

    def write(self, schema_name, table_name, records, object_schema=None, pk=None,
              db_name=None, **options):
        """Peliqan's pipeline write: creates the table (and missing columns) as needed and
        upserts `records` on `pk`; see pq._write."""
        from . import _write
        return _write.write(self, db_name or self.name, schema_name, table_name, records,
                            object_schema=object_schema, pk=pk, **options)

    def create_schema(self, schema_name, db_name=None):
        """Creates `schema_name` in the database if it does not exist."""
        from . import _write
        return _write.create_schema(self, db_name or self.name, schema_name)

    def create_table(self, schema_name, table_name, object_schema=None, pk=None, db_name=None,
                     records=None):
        """Creates `schema_name.table_name` if it does not exist, its columns from
        `object_schema` (JSON Schema `properties`) or inferred from sample `records`."""
        from . import _write
        return _write.create_table(self, db_name or self.name, schema_name, table_name,
                                   object_schema=object_schema, pk=pk, records=records)


def _render_options(python_types, fillna_with, fillnat_with, datetime_as_string, tz):
    """The options the host needs to write these rows as this SDK would (db/render.rs), or
    None if a fill value cannot be written as JSON (the rows then come to Python, which
    raises where it always did)."""
    zone = _rows.timezone(tz)
    fills = []
    for fill in (fillna_with, fillnat_with):
        try:
            fills.append(None if fill is None else _response.to_json(fill).decode("utf-8"))
        except _response.BadReturn:
            return None
    return {"python_types": bool(python_types), "datetime_as_string": bool(datetime_as_string),
            "utc": zone is _rows.datetime.timezone.utc,
            "offset_seconds": int(zone.utcoffset(None).total_seconds()),
            "fillna": fills[0], "fillnat": fills[1]}


def load_table(db_name="", schema_name="", table_name="", query="", **options):
    """Peliqan's `pq.load_table`: `dbconnect(db_name).fetch(db_name, ...)`, the tenant's
    warehouse when `db_name` is empty."""
    import pq
    name = db_name or pq.DW_NAME
    if not name:
        raise DatabaseError("load_table: no db_name, and the tenant has no warehouse")
    return dbconnect(name).fetch(name, schema_name or None, table_name or None, query or None,
                                 **options)


def dbconnect(name):
    """Opens the tenant's database `name`; raises pq.DatabaseNotFound for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"dbconnect() takes a database name (str), not {type(name).__name__}")
    _abi.db_call({"op": "connect", "connection": name})
    return DatabaseConnection(name)
