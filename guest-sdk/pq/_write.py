"""dbconn.write(): Peliqan's pipeline write. The table is created on the first write (columns
from `object_schema`, else inferred from the records' values) and missing columns are added
later; rows are upserted on `pk`, replacing the whole row (columns a record leaves out become
NULL), and a row whose values did not change is not touched. Every row carries
`_sdc_batched_at`, the time of the write that last changed it. Nested dicts and lists are
stored as jsonb (Peliqan makes child tables of them)."""

import datetime
import decimal
import re

from ._db import _jsonable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}\Z")
BATCHED_AT = "_sdc_batched_at"
# PostgreSQL binds at most 65,535 parameters per statement.
_MAX_PARAMS = 60_000
_MAX_BATCH = 500


def ident(name):
    """`name` quoted as an identifier; anything that is not a plain identifier is refused."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"invalid identifier {name!r}: letters, digits, '_' and '$', "
                         "not starting with a digit, at most 63")
    return f'"{name}"'


def value_type(value):
    """The column type a Python value needs; None for None (no evidence)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, decimal.Decimal):
        return "numeric"
    if isinstance(value, datetime.datetime):
        return "timestamptz"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, (dict, list, tuple)):
        return "jsonb"
    return "text"


def _wider(a, b):
    """One type that holds values of both."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    numbers = ("bigint", "double precision", "numeric")
    if a in numbers and b in numbers:
        return "numeric" if "numeric" in (a, b) else "double precision"
    return "text"


def _schema_type(prop):
    """The column type of a JSON Schema property (`{"type": "integer"}`, ...)."""
    kinds = prop.get("type", "string")
    kinds = [k for k in ([kinds] if isinstance(kinds, str) else kinds) if k != "null"]
    kind = kinds[0] if kinds else "string"
    if kind == "string":
        return {"date-time": "timestamptz", "date": "date"}.get(prop.get("format"), "text")
    return {"integer": "bigint", "number": "double precision", "boolean": "boolean",
            "object": "jsonb", "array": "jsonb"}.get(kind, "text")


def _columns_from(object_schema, records):
    """Column → type, from a JSON Schema or the records' values, in first-seen order."""
    if object_schema:
        return {name: _schema_type(prop or {})
                for name, prop in (object_schema.get("properties") or {}).items()}
    columns = {}
    for record in records:
        for name, value in record.items():
            columns[name] = _wider(columns.get(name), value_type(value))
    return {name: kind or "text" for name, kind in columns.items()}


def _records(records):
    if isinstance(records, dict):
        records = [records]
    records = list(records)
    for record in records:
        if not isinstance(record, dict):
            raise TypeError(f"records must be dicts of column -> value, not {type(record).__name__}")
    return records


def _pk_list(pk):
    if pk is None:
        return []
    return [pk] if isinstance(pk, str) else list(pk)


def create_schema(conn, db, schema):
    """`CREATE SCHEMA IF NOT EXISTS`."""
    conn.execute(db, f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    return {"status": "success", "schema": schema}


def existing_columns(conn, db, schema, table):
    """The table's columns and their types ({} if it does not exist)."""
    rows = conn.fetch(db, query="SELECT column_name AS name, data_type AS type FROM "
                      "information_schema.columns WHERE table_schema = %s AND table_name = %s "
                      "ORDER BY ordinal_position", params=[schema, table])
    return {row["name"]: row["type"] for row in rows}


def create_table(conn, db, schema, table, object_schema=None, pk=None, records=None):
    """`CREATE TABLE IF NOT EXISTS`, with `pk` as its primary key and `_sdc_batched_at`."""
    keys = _pk_list(pk)
    columns = _columns_from(object_schema, _records(records or []))
    for key in keys:
        columns.setdefault(key, "text")
    if not columns:
        raise ValueError("create_table needs an object_schema or records to take columns from")
    parts = [f"{ident(name)} {kind}" + (" NOT NULL" if name in keys else "")
             for name, kind in columns.items()]
    parts.append(f"{ident(BATCHED_AT)} timestamptz")
    if keys:
        parts.append(f"PRIMARY KEY ({', '.join(ident(k) for k in keys)})")
    create_schema(conn, db, schema)
    conn.execute(db, f"CREATE TABLE IF NOT EXISTS {ident(schema)}.{ident(table)} "
                     f"({', '.join(parts)})")
    return {"status": "success", "table": f"{schema}.{table}", "columns": list(columns)}


def write(conn, db, schema, table, records, object_schema=None, pk=None):
    """Writes `records`, creating what is missing; returns a summary of what it did."""
    records = _records(records)
    keys = _pk_list(pk)
    for record in records:
        missing = [k for k in keys if record.get(k) is None]
        if missing:
            raise ValueError(f"a record has no value for its primary key {missing}")
    with conn.transaction(db):
        existing = existing_columns(conn, db, schema, table)
        wanted = _columns_from(object_schema, records)
        added = []
        if not existing:
            create_table(conn, db, schema, table, object_schema=object_schema, pk=keys,
                         records=records)
            existing = existing_columns(conn, db, schema, table)
        else:
            for name, kind in wanted.items():
                if name not in existing:
                    conn.execute(db, f"ALTER TABLE {ident(schema)}.{ident(table)} "
                                     f"ADD COLUMN IF NOT EXISTS {ident(name)} {kind}")
                    added.append(name)
            if BATCHED_AT not in existing:
                conn.execute(db, f"ALTER TABLE {ident(schema)}.{ident(table)} "
                                 f"ADD COLUMN IF NOT EXISTS {ident(BATCHED_AT)} timestamptz")
            existing = existing_columns(conn, db, schema, table)
        columns = [name for name in existing if name != BATCHED_AT]
        changed = _upsert(conn, db, schema, table, columns, keys, records) if records else 0
    return {"status": "success", "table": f"{schema}.{table}", "rows_written": len(records),
            "rows_changed": changed, "columns_added": added}


def _upsert(conn, db, schema, table, columns, keys, records):
    """INSERT ... ON CONFLICT (pk) DO UPDATE of whole rows, skipping unchanged ones; returns
    the rows inserted or changed."""
    target = f"{ident(schema)}.{ident(table)}"
    names = ", ".join(ident(c) for c in columns)
    per_row = "(" + ", ".join(["%s"] * len(columns)) + ", now())"
    conflict = ""
    if keys:
        others = [c for c in columns if c not in keys]
        sets = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in others)
        sets = (sets + ", " if sets else "") + f"{ident(BATCHED_AT)} = EXCLUDED.{ident(BATCHED_AT)}"
        compare = ", ".join(f"{target}.{ident(c)}" for c in others)
        excluded = ", ".join(f"EXCLUDED.{ident(c)}" for c in others)
        unchanged = f" WHERE ({compare}) IS DISTINCT FROM ({excluded})" if others else ""
        conflict = (f" ON CONFLICT ({', '.join(ident(k) for k in keys)}) "
                    f"DO UPDATE SET {sets}{unchanged}")
    batch = max(1, min(_MAX_BATCH, _MAX_PARAMS // max(1, len(columns))))
    changed = 0
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        params = [_jsonable(record.get(c)) for record in chunk for c in columns]
        query = (f"INSERT INTO {target} ({names}, {ident(BATCHED_AT)}) VALUES "
                 + ", ".join([per_row] * len(chunk)) + conflict)
        changed += conn.execute(db, query, params)["rowcount"]
    return changed
