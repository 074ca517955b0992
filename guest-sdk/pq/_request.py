"""The request a handler sees: Flask's request (werkzeug's semantics, member by member), or a
plain dict for `handler(request)`."""

import base64
import json
import re
from urllib.parse import parse_qsl, unquote_to_bytes

from ._multidict import (Authorization, BadRequest, CombinedMultiDict, FileStorage, MultiDict,
                         UnsupportedMediaType, UserAgent, converted)

_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


_ESCAPED_NON_ASCII = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")


def _uri_to_iri(uri):
    """Percent-escaped UTF-8 outside ASCII shown as the characters it encodes, as werkzeug
    shows `request.url`; escaped ASCII (reserved characters) stays escaped."""
    def decode(match):
        try:
            return unquote_to_bytes(match.group(0)).decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)
    return _ESCAPED_NON_ASCII.sub(decode, uri)


def _title(name):
    """`content-type` → `Content-Type`, as werkzeug names headers."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class HeaderDict(dict):
    """The headers of `def handler(request):`: a dict (names as werkzeug spells them, a
    repeated header's values joined with ', ') that finds names in any case."""

    def _key(self, name):
        if isinstance(name, str):
            lower = name.lower()
            for key in dict.keys(self):
                if key.lower() == lower:
                    return key
        return name

    def __getitem__(self, name):
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name):
        return dict.__contains__(self, self._key(name))

    def get(self, name, default=None):
        return dict.get(self, self._key(name), default)


class Headers:
    """Case-insensitive, multi-valued request headers (werkzeug's Headers)."""

    def __init__(self, pairs):
        self._pairs = [(_title(str(k)), str(v)) for k, v in pairs]

    def get(self, name, default=None, type=None):
        name = name.lower()
        for key, value in self._pairs:
            if key.lower() == name:
                return converted(value, type, default)
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
        """One entry per name, found in any case; repeated headers are joined with ', ' as
        HTTP allows."""
        merged = HeaderDict()
        for key, value in self._pairs:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    def __repr__(self):
        return f"Headers({self._pairs!r})"


def _parameters(header):
    """`form-data; name="a"; filename="b.txt"` → ('form-data', {'name': 'a', ...})."""
    value, _, rest = header.partition(";")
    params = {}
    for item in rest.split(";"):
        key, sep, raw = item.strip().partition("=")
        if sep:
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"')
            params[key.strip().lower()] = raw
    return value.strip().lower(), params


def _multipart(body, content_type):
    """The fields and files of a multipart/form-data body."""
    _, params = _parameters(content_type)
    boundary = params.get("boundary")
    fields, files = [], []
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        _, disposition = _parameters(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            continue
        if "filename" in disposition:
            files.append((name, FileStorage(name, disposition["filename"],
                                            headers.get("content-type"), content)))
        else:
            fields.append((name, content.decode("utf-8", "replace")))
    return fields, files


class Request:
    """The current HTTP request, with Flask's members and their werkzeug semantics. Where
    pubfn differs: `get_data()` always returns the raw body (also after `form` was read), and a
    repeated header keeps its values apart (`headers.getlist`)."""

    def __init__(self, head, body):
        self.method = head["method"]
        self.url = _uri_to_iri(head["url"])
        self.path = head["path"]
        self.query_string = head["query_string"].encode("latin-1")
        self.headers = Headers(head["headers"])
        self.view_args = dict(head.get("path_params") or {})
        self.remote_addr = head.get("remote_addr") or "127.0.0.1"
        # The tenant's default warehouse, for pq.DW_NAME.
        self.warehouse = head.get("warehouse")
        self._body = body
        self._parsed = None
        self._json = None
        # Whether get_data() ran before the form was parsed (werkzeug then keeps the body for
        # `data`, else a form's body is consumed by parsing it).
        self._body_kept = False

    # -- the URL -------------------------------------------------------------------------
    @property
    def scheme(self):
        return self.url.split("://", 1)[0]

    @property
    def host(self):
        return self.url.split("://", 1)[1].split("/", 1)[0]

    @property
    def host_url(self):
        return f"{self.scheme}://{self.host}/"

    @property
    def base_url(self):
        return self.url.split("?", 1)[0]

    @property
    def full_path(self):
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def args(self):
        return MultiDict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True,
                                   encoding="utf-8", errors="replace"))

    # -- headers -------------------------------------------------------------------------
    @property
    def content_type(self):
        return self.headers.get("content-type")

    @property
    def mimetype(self):
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self):
        return self.headers.get("content-length", type=int)

    @property
    def cookies(self):
        pairs = []
        for header in self.headers.getlist("cookie"):
            for item in header.split(";"):
                key, sep, value = item.strip().partition("=")
                if sep and key:
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    pairs.append((key, value))
        return MultiDict(pairs)

    @property
    def user_agent(self):
        return UserAgent(self.headers.get("user-agent"))

    @property
    def authorization(self):
        header = self.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(credentials).decode("utf-8").partition(":")
            except ValueError:
                return None
            return Authorization("basic", username=user, password=password)
        return Authorization(scheme, token=credentials or None)

    # -- the body ------------------------------------------------------------------------
    def _form_and_files(self):
        if self._parsed is None:
            fields, files = [], []
            if self.mimetype == _FORM:
                fields = parse_qsl(self._body.decode("latin-1"), keep_blank_values=True,
                                   encoding="utf-8", errors="replace")
            elif self.mimetype == _MULTIPART:
                fields, files = _multipart(self._body, self.content_type)
            self._parsed = (MultiDict(fields), MultiDict(files))
        return self._parsed

    @property
    def form(self):
        return self._form_and_files()[0]

    @property
    def files(self):
        return self._form_and_files()[1]

    @property
    def values(self):
        """`args` and `form` together (`args` alone for GET, as werkzeug has it)."""
        if self.method == "GET":
            return CombinedMultiDict([self.args])
        return CombinedMultiDict([self.args, self.form])

    @property
    def data(self):
        """The raw body; for a form body (whose fields are in `form`) b'', unless get_data()
        read it before the form was parsed, as in werkzeug."""
        if self.mimetype in (_FORM, _MULTIPART) and not self._body_kept:
            return b""
        return self._body

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        """The raw body as received, whatever its type (a form body too, also after `form`
        was read, where werkzeug would give b''): bytes, or text with `as_text`. Together with
        `form` and `query_string` it is everything the client sent."""
        if cache and self._parsed is None:
            self._body_kept = True
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def is_json(self):
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_json(self, force=False, silent=False, cache=True):
        """The body parsed as JSON. Not JSON by its type: None with `silent`, else 415. Not
        valid JSON: None with `silent`, else 400 (as Flask answers)."""
        if not (force or self.is_json):
            if silent:
                return None
            raise UnsupportedMediaType(
                "Did not attempt to load JSON data because the request Content-Type was not "
                "'application/json'.")
        if self._json is None:
            try:
                self._json = (json.loads(self._body),)
            except ValueError as exc:
                if silent:
                    return None
                raise BadRequest(f"Failed to decode JSON object: {exc}") from None
        return self._json[0]

    @property
    def json(self):
        return self.get_json()

    def as_dict(self):
        """The form given to `def handler(request):`: strings throughout, bytes if not UTF-8."""
        try:
            data = self._body.decode("utf-8")
        except UnicodeDecodeError:
            data = self._body
        return {
            "method": self.method,
            "url": self.url,
            "path": self.path,
            "query_string": self.query_string.decode("latin-1"),
            "headers": self.headers.to_dict(),
            "data": data,
            "form": self.form.to_dict(),
            "args": self.args.to_dict(),
            "path_params": dict(self.view_args),
            "json": self.get_json(silent=True),
        }

    def __repr__(self):
        return f"<Request {self.url!r} [{self.method}]>"


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
