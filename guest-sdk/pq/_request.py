"""The request a handler sees: Flask-like attributes, or a plain dict for `handler(request)`."""

import json
from urllib.parse import parse_qs, parse_qsl


class Headers:
    """Case-insensitive, multi-valued request headers (like werkzeug's Headers)."""

    def __init__(self, pairs):
        self._pairs = [(str(k), str(v)) for k, v in pairs]

    def get(self, name, default=None):
        name = name.lower()
        for key, value in self._pairs:
            if key.lower() == name:
                return value
        return default

    def getlist(self, name):
        name = name.lower()
        return [value for key, value in self._pairs if key.lower() == name]

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self.get(name) is not None

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def keys(self):
        return [key for key, _ in self._pairs]

    def items(self):
        return list(self._pairs)

    def to_dict(self):
        """One entry per name; repeated headers are joined with ', ' as HTTP allows."""
        merged = {}
        for key, value in self._pairs:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    def __repr__(self):
        return f"Headers({self._pairs!r})"


class Request:
    """The current HTTP request, with Flask's attribute names."""

    def __init__(self, head, body):
        self.method = head["method"]
        self.url = head["url"]
        self.path = head["path"]
        self.query_string = head["query_string"].encode("latin-1")
        self.headers = Headers(head["headers"])
        self.view_args = dict(head.get("path_params") or {})
        # The tenant's default warehouse, for pq.DW_NAME.
        self.warehouse = head.get("warehouse")
        self.data = body
        self._json_cache = None

    @property
    def args(self):
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    @property
    def mimetype(self):
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def form(self):
        """Fields of an application/x-www-form-urlencoded body (repeated names: first wins)."""
        if self.mimetype != "application/x-www-form-urlencoded":
            return {}
        text = self.data.decode("utf-8", "replace")
        return {key: values[0] for key, values in parse_qs(text, keep_blank_values=True).items()}

    @property
    def is_json(self):
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_data(self, as_text=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force=False, silent=False):
        """The body parsed as JSON; None when it is not JSON (Flask's semantics, minus the 415)."""
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self):
        return self.get_json()

    def as_dict(self):
        """The form given to `def handler(request):`: strings throughout, bytes if not UTF-8."""
        try:
            data = self.data.decode("utf-8")
        except UnicodeDecodeError:
            data = self.data
        return {
            "method": self.method,
            "url": self.url,
            "path": self.path,
            "query_string": self.query_string.decode("latin-1"),
            "headers": self.headers.to_dict(),
            "data": data,
            "form": self.form,
            "args": self.args,
            "path_params": dict(self.view_args),
            "json": self.get_json(silent=True),
        }

    def __repr__(self):
        return f"<Request {self.method} {self.url!r}>"


class _CurrentRequest:
    """Stands for whichever request is being handled, so `from pq import request` at module
    level keeps working in warm instances that serve many requests."""

    __slots__ = ()

    def __getattr__(self, name):
        if _current is None:
            raise RuntimeError("no request is being handled (module-level code runs before one)")
        return getattr(_current, name)

    def __repr__(self):
        return repr(_current) if _current is not None else "<no current request>"


_current = None
request = _CurrentRequest()


def set_current(req):
    global _current
    _current = req
