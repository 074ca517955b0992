"""`fetch(..., df=True)`: a fetch's result as a pandas DataFrame.

The host answers a `df=True` fetch column by column (`"layout": "columns"`: one JSON list per
column, numerics as text), so each column becomes one numpy array in one call: no dict, and
no Python loop, per row. Column types decide the dtypes:

    int2/int4/int8/oid        int64, or the nullable Int64 when the column has NULLs
    float4/float8             float64 (NULL -> NaN)
    numeric                   object of Decimal with enable_python_types, else float64
    bool                      bool, or the nullable boolean when the column has NULLs
    timestamptz               datetime64[ns, UTC] (converted to `tz` when it is not UTC)
    timestamp                 datetime64[ns]
    date                      object of datetime.date
    text and the rest         what pandas makes of the values (str for text)

Dates and timestamps are always datetime values here (a DataFrame's own types), whatever
`enable_datetime_as_string` says; a handler returning the frame answers ISO 8601 text anyway.
"""

import datetime
import decimal
import json

from . import _rows

_INTS = {"int2", "int4", "int8", "oid"}
_FLOATS = {"float4", "float8"}
_TEMPORAL = {"date", "time", "timetz", "timestamp", "timestamptz"}


def _pandas():
    try:
        import numpy
        import pandas
    except ImportError:
        raise ImportError(
            "df=True needs pandas, which this tenant's interpreter does not load: preload it "
            '(PUT /admin/v1/tenants/{tenant}/preload {"modules": ["pandas"]})') from None
    return numpy, pandas


def _column(np, pd, values, pg_type, python_types, zone):
    has_null = None in values
    if pg_type in _INTS:
        return pd.array(values, dtype="Int64") if has_null else np.array(values, dtype=np.int64)
    if pg_type in _FLOATS:
        # NULL becomes NaN; PostgreSQL's 'NaN' and 'Infinity' arrive as text and parse.
        return np.array(values, dtype=np.float64)
    if pg_type == "numeric":
        if python_types:
            dec = decimal.Decimal
            return np.array([None if v is None else dec(v) for v in values], dtype=object)
        return np.array(values, dtype=np.float64)
    if pg_type == "bool":
        return pd.array(values, dtype="boolean") if has_null else np.array(values, dtype=bool)
    if pg_type == "timestamptz":
        stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype(
            "datetime64[ns, UTC]")
        return stamps if zone is datetime.timezone.utc else stamps.dt.tz_convert(zone)
    if pg_type == "timestamp":
        return pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[ns]")
    if pg_type == "date":
        fromiso = datetime.date.fromisoformat
        return np.array([None if v is None else fromiso(v) for v in values], dtype=object)
    convert = _rows._converter(pg_type, python_types, False, zone)
    if convert is not None:
        values = [None if v is None else convert(v) for v in values]
    return values


def frame(raw, python_types=True, fillna_with=None, fillnat_with=None, tz=None):
    """The host's column-major result as a DataFrame (see the module's docstring)."""
    np, pd = _pandas()
    zone = _rows.timezone(tz)
    result = json.loads(raw)
    columns = result["columns"]
    data = result["data"]
    arrays = {}
    for column, values in zip(columns, data):
        arrays[column["name"]] = _column(np, pd, values, column["type"], python_types, zone)
    df = pd.DataFrame(arrays, columns=[c["name"] for c in columns])
    if fillna_with is not None or fillnat_with is not None:
        temporal = [c["name"] for c in columns if c["type"].lstrip("_") in _TEMPORAL]
        fills = {}
        for c in columns:
            name = c["name"]
            fill = fillnat_with if fillnat_with is not None and name in temporal else fillna_with
            if fill is not None:
                fills[name] = fill
        df = df.fillna(fills)
    return df


def _decimals_as_numbers(column, default):
    """`column` with its Decimals as JSON numbers (pandas writes them as text), or None when
    it has none."""
    if column.dtype != object:
        return None
    dec = decimal.Decimal
    if not any(isinstance(v, dec) for v in column):
        return None
    return column.map(lambda v: default(v) if isinstance(v, dec) else v)


def to_records_json(value, default):
    """A handler's DataFrame (or Series) as the response body: JSON records, ISO 8601 dates,
    Decimals as numbers (as rows are written); `default` writes what pandas has no JSON for."""
    if hasattr(value, "columns"):
        fixed_frame = None
        for position, (_, column) in enumerate(value.items()):
            fixed = _decimals_as_numbers(column, default)
            if fixed is not None:
                if fixed_frame is None:
                    fixed_frame = value.copy()
                fixed_frame.isetitem(position, fixed)
        value = value if fixed_frame is None else fixed_frame
    else:
        fixed = _decimals_as_numbers(value, default)
        value = value if fixed is None else fixed
    text = value.to_json(orient="records", date_format="iso", date_unit="us",
                         default_handler=default, force_ascii=False)
    return text.encode("utf-8")
