"""A fetch's rows, from the host's JSON to Python values by column type, with Peliqan's
options: `enable_python_types`, `enable_datetime_as_string`, `tz`, `fillna_with`,
`fillnat_with`."""

import datetime
import decimal
import json

_loads = json.loads
_Decimal = decimal.Decimal

_INTS = {"int2", "int4", "int8", "oid"}
# Types whose JSON never holds a number with a fraction, so their values need no look.
_NEVER_FRACTIONAL = {"text", "varchar", "bpchar", "char", "name", "bool", "uuid", "date", "time",
                     "timetz", "timestamp", "timestamptz", "interval", "inet", "cidr",
                     "macaddr", "xml", *_INTS}
_FLOATS = {"float4", "float8"}
# Date and time types: `fillnat_with` fills their NULLs, as Peliqan fills NaT.
_TEMPORAL = {"date", "time", "timetz", "timestamp", "timestamptz"}


def _decimal(value):
    return value if isinstance(value, _Decimal) else _Decimal(str(value))


def _number(value):
    """A numeric as a JSON-friendly number: int when integral, else float."""
    value = _decimal(value)
    if value.is_finite() and value == value.to_integral_value():
        return int(value)
    return float(value)


def _plain_json(value):
    """A json/jsonb value with its numbers as int or float, as json.loads would give them."""
    if isinstance(value, _Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    return value


def timezone(tz):
    """`tz` as a tzinfo: 'UTC', or a fixed offset such as '+02:00'. Named zones need a time
    zone database, which this runtime does not have yet."""
    if tz is None or tz.upper() in ("UTC", "Z", "GMT", "+00:00"):
        return datetime.timezone.utc
    try:
        return datetime.datetime.fromisoformat(f"2000-01-01T00:00:00{tz}").tzinfo
    except ValueError:
        raise ValueError(f"tz={tz!r}: this runtime has no time zone database yet; use 'UTC' or "
                         "a fixed offset such as '+02:00'") from None


def _timestamptz(zone, as_string):
    """A timestamptz from the host, in `zone`, as text or as an aware datetime."""
    utc = zone is datetime.timezone.utc

    def convert(text):
        if as_string and utc and text.endswith("+00:00"):
            return text  # already what it would become
        value = datetime.datetime.fromisoformat(text).astimezone(zone)
        return value.isoformat() if as_string else value
    return convert


def _converter(pg_type, python_types, datetime_as_string, zone):
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
    elif base == "timestamptz" and (python_types or zone is not datetime.timezone.utc):
        scalar = _timestamptz(zone, datetime_as_string or not python_types)
    elif python_types and not datetime_as_string and base in ("timestamp", "date"):
        scalar = (datetime.datetime.fromisoformat if base == "timestamp"
                  else datetime.date.fromisoformat)
    elif python_types and base == "time":
        scalar = datetime.time.fromisoformat
    else:
        return None
    if pg_type.startswith("_"):
        def convert_list(value):
            return [convert_list(v) if isinstance(v, list) else (None if v is None else scalar(v)) for v in value]
        return convert_list
    return scalar


def rows(raw, python_types=True, fillna_with=None, fillnat_with=None, datetime_as_string=False,
         tz=None):
    """Rows of a fetch result as dicts. Numerics are Decimal (float without python types);
    date and time values are text (ISO 8601) with `datetime_as_string`, else Python objects;
    timestamps with a time zone are in `tz` (UTC by default)."""
    zone = timezone(tz)
    result = _loads(raw, parse_float=_Decimal)
    found = result["rows"]
    if not found:
        return found
    # Column by column, and only the columns that need it: this runs inside the interpreter
    # for every value of every row, so it is the fetch's main cost in the guest.
    for column in result["columns"]:
        name, pg_type = column["name"], column["type"]
        convert = _converter(pg_type, python_types, datetime_as_string, zone)
        if convert is None:
            if pg_type in _NEVER_FRACTIONAL:
                continue
            convert = _untyped_number
        for row in found:
            value = row[name]
            if value is not None:
                row[name] = convert(value)
    if fillna_with is not None or fillnat_with is not None:
        temporal = {c["name"] for c in result["columns"] if c["type"].lstrip("_") in _TEMPORAL}
        for row in found:
            for name, value in row.items():
                if value is None:
                    fill = fillnat_with if fillnat_with is not None and name in temporal else fillna_with
                    if fill is not None:
                        row[name] = fill
    return found


def _untyped_number(value):
    """A non-integer number of a column without a converter is a float, as json.loads gives."""
    return float(value) if value.__class__ is _Decimal else value
