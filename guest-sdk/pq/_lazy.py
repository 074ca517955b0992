"""A fetch's rows that stay on the host until Python touches them.

`fetch(...)` answers with `Rows`, a `list` whose dicts are made on first use, once, exactly as
the eager path makes them (`_rows.rows`). Until then its list storage holds one marker string.
Returned untouched, alone or inside the returned dict or list, the rows are written by the
host straight from PostgreSQL's values (src/db/render.rs): while the driver encodes the
response (`DriverEncoder`), iterating pending rows yields the marker (json's C encoder reads a
list subclass through its iterator), and the host splices the rows' JSON in where the marker
landed (`body_parts`). Every other use (len, iteration, indexing, comparison, mutation, repr,
pickling, the handler's own `json.dumps`) sees the real list. The marker's nonce is new for
each request and unknown to callers, so data a caller sends can never be taken for rows.
"""

import json
import os
import re
import struct
import weakref

import _pq

from . import _abi

_OP_DB_ROWS = _pq.PQ_OP_DB_ROWS
_OP_RESPONSE_BODY_ROWS = _pq.PQ_OP_RESPONSE_BODY_ROWS
_u32 = struct.Struct("<I").pack
_list = list

# Whether the driver is encoding the response (then pending rows stay markers).
_encoding = False
# Rows not yet made into dicts, and still referenced somewhere (by id: a list is unhashable).
_pending = weakref.WeakValueDictionary()
_nonce = os.urandom(8).hex()


def begin_request():
    """A new nonce for each request's markers. Rows of an earlier call still pending (which
    `end_request` makes impossible unless it failed) would read this call's results: they
    raise instead."""
    global _nonce
    _nonce = os.urandom(8).hex()
    for rows in _list(_pending.values()):
        rows._handle = None
        _pending.pop(id(rows), None)


def end_request():
    """Rows a handler kept beyond its call (a warm instance's global, say) are made into dicts
    now, while their handle still means this call's result."""
    materialize_all()


def materialize_all():
    for rows in _list(_pending.values()):
        rows._materialize()


def _marker(handle):
    return f"\ue000pq{_nonce}:{handle}\ue001"


class Rows(list):
    """The rows of one fetch: a list of dicts, made when first used."""

    __slots__ = ("_handle", "_count", "_convert", "_done", "__weakref__")

    def __init__(self, handle, count, convert):
        _list.__init__(self, (_marker(handle),))
        self._handle, self._count, self._convert, self._done = handle, count, convert, False
        _pending[id(self)] = self

    def _materialize(self):
        if not self._done:
            if self._handle is None:
                raise RuntimeError("these rows belong to an earlier request and were not kept")
            self._done = True
            _pending.pop(id(self), None)
            raw = _abi.call(_OP_DB_ROWS, _u32(self._handle))
            _list.__setitem__(self, slice(None), self._convert(raw))
        return self

    def __len__(self):
        return _list.__len__(self) if self._done else self._count

    def __iter__(self):
        if not self._done and _encoding:
            return _list.__iter__(self)  # the marker
        return _list.__iter__(self._materialize())

    def __reduce_ex__(self, protocol):
        return (_list, (_list(self._materialize()),))

    def __copy__(self):
        return _list(self._materialize())

    def __deepcopy__(self, memo):
        import copy
        return copy.deepcopy(_list(self._materialize()), memo)

    def __radd__(self, other):
        return other + _list(self._materialize())


def _touching(name):
    method = getattr(_list, name)

    def touched(self, *args, **kwargs):
        return method(self._materialize(), *args, **kwargs)
    touched.__name__ = name
    touched.__doc__ = method.__doc__
    return touched


for _name in ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__eq__",
              "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__iadd__", "__mul__",
              "__rmul__", "__imul__", "__reversed__", "__repr__", "__sizeof__", "append",
              "extend", "insert", "pop", "remove", "index", "count", "sort", "reverse", "clear",
              "copy"):
    setattr(Rows, _name, _touching(_name))
Rows.__hash__ = None


_iterencode = json.JSONEncoder.iterencode


class DriverEncoder(json.JSONEncoder):
    """The response's encoder: pending rows stay markers, for the host to fill in. Only the
    one-shot C path is used (the driver passes no indent), which encodes before returning."""

    def iterencode(self, o, _one_shot=False):
        global _encoding
        _encoding = True
        try:
            return _iterencode(self, o, _one_shot)
        finally:
            _encoding = False


def body_parts(body):
    """The response body as host-call parts if it holds markers (else None): literal bytes
    and rows handles, for `PQ_OP_RESPONSE_BODY_ROWS`."""
    if not _pending:
        return None
    marker = re.compile(b'\\["\xee\x80\x80pq' + _nonce.encode() + b':([0-9]+)\xee\x80\x81"\\]')
    parts, at = [], 0
    for match in marker.finditer(body):
        literal = body[at:match.start()]
        parts.append(b"\x00" + _u32(len(literal)) + literal)
        parts.append(b"\x01" + _u32(int(match.group(1))))
        at = match.end()
    if not parts:
        return None
    tail = body[at:]
    parts.append(b"\x00" + _u32(len(tail)) + tail)
    return b"".join(parts)


def send_body(body):
    """Sends the response body, kept rows spliced in where the markers are."""
    parts = body_parts(body)
    if parts is None:
        _abi.call(_pq.PQ_OP_RESPONSE_BODY, body)
    else:
        _abi.call(_OP_RESPONSE_BODY_ROWS, parts)
