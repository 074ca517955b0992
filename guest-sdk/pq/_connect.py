"""`pq.connect(name)`: a tenant's stored connection to an API, Peliqan style.

The connection (base URL, credentials in headers or query parameters) is kept by the host, set
through the admin API; the handler never sees the credentials. It names the connection and a
path below its base URL, and the host adds the rest (ABI op 20 with `connection`, see
pq/_http.py). Redirects are followed by the host, each hop checked against the tenant's egress
allow-list; credentials never follow a redirect to another origin.

Every call returns `{"status": int, "headers": {name: value}, "detail": ...}` and a non-2xx
status does not raise: the caller reads "status". Denial and network failures raise
pq.EgressDenied and pq.EgressError (pq.EgressTimeout, pq.EgressTooLarge); an unknown
connection name raises pq.ConnectionNotFound.
"""

import json
import urllib.parse
import zlib

from . import _http, _response
from .errors import EgressTooLarge

# Bound at snapshot time, like the rest of the SDK's tools.
_dumps, _loads = json.dumps, json.loads
_quote, _urlencode = urllib.parse.quote, urllib.parse.urlencode
_json_default = _response._json_default

# A compressed body is inflated here (the host leaves content codings alone); past this size
# the inflated body is refused rather than allowed to exhaust the instance's memory.
MAX_INFLATED_BYTES = 32 << 20

# Content types read as text besides text/*: the +json and +xml families are checked apart.
_TEXT_TYPES = frozenset(("application/xml", "application/javascript", "application/ecmascript",
                         "application/x-www-form-urlencoded", "application/x-ndjson",
                         "application/graphql", "application/csv", "application/yaml",
                         "application/x-yaml"))


def connect(name):
    """The tenant's stored connection `name` (e.g. pq.connect("Hubspot")). Nothing is sent
    until a call is made; an unknown name raises pq.ConnectionNotFound then."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"connect() takes a connection name (str), not {name!r}")
    return Connection(name)


class Connection:
    """A stored connection: apicall() for any request, get/add/update/delete for REST."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<pq.Connection {self.name!r}>"

    def apicall(self, path, method="get", body=None, headers=None, params=None, *, timeout=None):
        """Sends `method` to `path` below the connection's base URL.

        `params` (a dict) becomes the query string (a list value repeats its key; None values
        are left out); `body` is sent as JSON (with Content-Type application/json) if a dict or
        list, UTF-8 if a str, as is if bytes; `headers` is a dict. Returns {"status", "headers", "detail"}: the headers with
        lower-case names (repeated ones joined by ", "), the detail as parsed JSON for a JSON
        response, text for a textual one, bytes otherwise, None for an empty body."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        if params:
            query = _urlencode([(key, value) for key, value in _pairs(params)
                                if value is not None], doseq=True)
            if query:
                path += ("&" if "?" in path else "?") + query
        sent = [] if headers is None else [(str(k), str(v)) for k, v in _pairs(headers)]
        names = {name.lower() for name, _ in sent}
        if isinstance(body, (dict, list)):
            data = _dumps(body, default=_json_default, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
            if "content-type" not in names:
                sent.append(("Content-Type", "application/json"))
        elif isinstance(body, str):
            data = body.encode("utf-8")  # no Content-Type is guessed for it, as requests does
        elif body is None:
            data = b""
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = body
        else:
            raise TypeError(f"body must be a dict, list, str or bytes, not {type(body).__name__}")
        if "accept-encoding" not in names:
            sent.append(("Accept-Encoding", "gzip, deflate"))  # inflated below
        result = _http.send(method.upper(), path, sent, data, connection=self.name,
                            follow_redirects=True, timeout=timeout)
        return _result(result)

    def get(self, object_name, id=None, params=None):
        """GET /object_name, or /object_name/id."""
        return self.apicall(_path(object_name, id), "GET", params=params)

    def add(self, object_name, body):
        """POST /object_name with `body` (JSON for a dict or list)."""
        return self.apicall(_path(object_name, None), "POST", body=body)

    def update(self, object_name, id, body):
        """PATCH /object_name/id with `body`."""
        return self.apicall(_path(object_name, id), "PATCH", body=body)

    def delete(self, object_name, id):
        """DELETE /object_name/id."""
        return self.apicall(_path(object_name, id), "DELETE")


def _pairs(mapping):
    return mapping.items() if hasattr(mapping, "items") else mapping


def _path(object_name, id):
    if not isinstance(object_name, str) or not object_name.strip("/"):
        raise TypeError(f"object_name must be a non-empty str, not {object_name!r}")
    path = "/" + object_name.strip("/")
    if id is not None:
        path += "/" + _quote(str(id), safe="")  # one path segment, whatever the id holds
    return path


def _inflate(body, encodings):
    """`body` without its content codings (gzip, deflate), innermost last; None if one of them
    is unknown (the body is then returned as bytes, as it came)."""
    for coding in reversed(encodings):
        if coding in ("gzip", "x-gzip"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            # "deflate" is zlib-wrapped by the standard, raw deflate by some servers.
            wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
            inflater = zlib.decompressobj(wbits)
        elif coding == "identity":
            continue
        else:
            return None
        body = inflater.decompress(body, MAX_INFLATED_BYTES + 1)
        if len(body) > MAX_INFLATED_BYTES:
            raise EgressTooLarge(f"the response body inflates to over {MAX_INFLATED_BYTES} bytes")
    return body


def _result(result):
    headers = {}
    for name, value in result.headers:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    body = result.body
    codings = [coding.strip().lower()
               for coding in headers.get("content-encoding", "").split(",") if coding.strip()]
    if codings and body:
        try:
            inflated = _inflate(body, codings)
        except zlib.error:
            inflated = None
        if inflated is None:
            return {"status": result.status, "headers": headers, "detail": bytes(body)}
        body = inflated
    return {"status": result.status, "headers": headers,
            "detail": _detail(bytes(body), headers.get("content-type"))}


def _detail(body, content_type):
    if not body:
        return None
    media, _, parameters = (content_type or "").partition(";")
    media = media.strip().lower()
    charset = None
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    if media == "application/json" or media.endswith("+json"):
        try:
            return _loads(_text(body, charset))
        except ValueError:
            return _text(body, charset)  # not JSON after all: its text
    if (media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+xml")
            or (not media and charset is None and _is_utf8(body))):
        return _text(body, charset)
    return body


def _is_utf8(body):
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _text(body, charset):
    """The body decoded by its charset (UTF-8 by default); Latin-1, which never fails, when
    the charset is unknown or the bytes are not in it."""
    try:
        return body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return body.decode("latin-1")


__all__ = ["Connection", "connect"]
