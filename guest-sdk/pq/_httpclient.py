"""`http.client` without sockets, so that `urllib.request` (and anything else written for
http.client) reaches the network through the host (ABI op 20, see pq/_http.py).

There are no sockets under WASI and no `ssl` module, so CPython leaves `HTTPSConnection` out of
http.client, and urllib.request then defines no HTTPSHandler. `install()` puts the two classes
below into http.client. It must run before urllib.request is first imported (pq/__init__.py
calls it), because urllib.request decides at import time whether HTTPS exists.

A connection buffers what putrequest/putheader/endheaders/send give it and makes the one host
call as soon as the request is complete: at endheaders() for a request whose body came with it
(always the case for request()), else once send() has delivered the announced Content-Length,
else at getresponse(). Where a failure surfaces follows sockets: a refused or failed connection
raises from request() (urllib.request turns that into URLError), a timeout from getresponse(),
where waiting for the answer would have timed out (urllib lets that TimeoutError through). The
response is a genuine http.client.HTTPResponse, parsed by http.client from the host's bytes.
"""

import http.client as _hc
import importlib
import io
import re
import socket
import sys

from . import _http
from .errors import EgressTimeout

# Whatever install() does, these stay the originals.
_BaseConnection = _hc.HTTPConnection
_is_legal_header_name = _hc._is_legal_header_name
_is_illegal_header_value = _hc._is_illegal_header_value
_GLOBAL_DEFAULT_TIMEOUT = socket._GLOBAL_DEFAULT_TIMEOUT
_getdefaulttimeout = socket.getdefaulttimeout

_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_OBS_FOLD = re.compile(rb"\r?\n[ \t]+|\r(?=[ \t])")  # a folded header value, unfolded with a space
_UNSAFE_IN_HEAD = re.compile(rb"[\r\n\x00]")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _ReceivedSocket:
    """Stands where HTTPResponse expects a socket: the whole response is already here."""

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    def makefile(self, mode="rb", *args, **kwargs):
        # A BufferedReader, as socket.makefile("rb") gives: HTTPResponse.peek() needs one.
        return io.BufferedReader(io.BytesIO(self._data))

    def close(self):
        pass


def response_from_result(result, method, url=None, debuglevel=0, response_class=None):
    """An http.client.HTTPResponse (begun, body unread) for the host's answer `result`.

    The host's framing headers are meaningless here (the body came de-chunked), so
    Transfer-Encoding and Content-Length are replaced by the length of the body, except where
    there is no body: a HEAD request or a 1xx/204/304 status keeps the server's Content-Length,
    which then describes the resource. The status line says HTTP/1.1 even for an HTTP/2
    answer: http.client reads no other version.
    """
    status, reason, headers, _url, version, body = result
    no_body = method == "HEAD" or status < 200 or status in (204, 304)
    reason = _UNSAFE_IN_HEAD.sub(b" ", reason.encode("latin-1", "replace"))
    lines = [b"%s %d %s" % (b"HTTP/1.0" if version == "HTTP/1.0" else b"HTTP/1.1", status, reason)]
    for name, value in headers:
        lower = name.lower()
        if lower == "transfer-encoding" or (lower == "content-length" and not no_body):
            continue
        name = name.encode("latin-1", "replace")
        value = value.encode("latin-1", "replace")
        # One that no socket could have delivered either: left out rather than misparsed.
        if not _is_legal_header_name(name) or _UNSAFE_IN_HEAD.search(value):
            continue
        lines.append(name + b": " + value)
    if not no_body:
        lines.append(b"Content-Length: %d" % len(body))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if no_body else body)
    response = (response_class or _hc.HTTPResponse)(_ReceivedSocket(data), debuglevel,
                                                     method=method, url=url)
    response.begin()
    return response


def _dechunk(data):
    """The payload of a body the guest framed in chunks itself (after announcing
    Transfer-Encoding: chunked, without encode_chunked); trailers are dropped."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        size = bytes(data[pos:end]).split(b";", 1)[0].strip() if end >= 0 else b""
        if not _CHUNK_SIZE.fullmatch(size):
            raise ValueError("malformed chunked request body: bad chunk-size line")
        size, pos = int(size, 16), end + 2
        if size == 0:
            return out
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("malformed chunked request body: a chunk is not its announced size")
        out += data[pos:pos + size]
        pos += size + 2


class _Pending:
    """The request being built on a connection, until its host call."""

    __slots__ = ("method", "target", "headers", "body", "length", "chunked", "framed", "ended",
                 "sent", "result", "timeout")

    def __init__(self, method, target):
        self.method, self.target = method, target
        self.headers, self.body = [], bytearray()
        self.length = None      # the Content-Length the guest announced
        self.chunked = False    # the guest announced Transfer-Encoding: chunked
        self.framed = False     # ... and frames the body itself (so it is de-chunked here)
        self.ended = self.sent = False
        self.result = self.timeout = None  # the answer, or the EgressTimeout for getresponse()


class HTTPConnection(_BaseConnection):
    """http.client.HTTPConnection whose requests are made by the pubfn host (one host call
    each). The interface is http.client's; `source_address` is ignored, `set_tunnel` refused
    (there are no proxies), and the Host header is the host's, from the URL."""

    _pq_scheme = "http"

    def __init__(self, host, port=None, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None,
                 blocksize=8192):
        super().__init__(host, port, timeout, source_address, blocksize)
        self._pq_pending = None

    def connect(self):
        """Nothing to do: the host opens (or reuses) its own connection for each request."""

    def set_tunnel(self, host, port=None, headers=None):
        raise NotImplementedError("no HTTP proxies in pubfn: the host makes every outbound "
                                  "request itself")

    def close(self):
        self._pq_pending = None
        super().close()

    def putrequest(self, method, url, skip_host=False, skip_accept_encoding=False):
        if self._pq_pending is not None:
            raise _hc.CannotSendRequest("a request is already in progress on this connection")
        self._validate_method(method)
        url = url or "/"
        self._validate_path(url)
        if not url.startswith("/") and not _ABSOLUTE_URL.match(url):
            raise _hc.InvalidURL(f"a request target must be a path ('/...') or an absolute "
                                 f"http(s) URL, not {url!r}")
        self._method = method
        pending = _Pending(method, url)
        if self._http_vsn == 11 and not skip_accept_encoding:
            pending.headers.append(("Accept-Encoding", "identity"))  # as http.client does
        self._pq_pending = pending

    def putheader(self, header, *values):
        pending = self._pq_pending
        if pending is None or pending.ended:
            raise _hc.CannotSendHeader()
        if hasattr(header, "encode"):
            header = header.encode("ascii")
        if not _is_legal_header_name(header):
            raise ValueError(f"Invalid header name {header!r}")
        encoded = []
        for value in values:
            if hasattr(value, "encode"):
                value = value.encode("latin-1")
            elif isinstance(value, int):
                value = str(value).encode("ascii")
            if _is_illegal_header_value(value):
                raise ValueError(f"Invalid header value {value!r}")
            encoded.append(_OBS_FOLD.sub(b" ", value))
        # http.client folds several values onto continuation lines; a list means the same.
        name, value = header.decode("latin-1"), b", ".join(encoded).decode("latin-1")
        lower = name.lower()
        if lower == "content-length":
            try:
                pending.length = int(value.strip())
            except ValueError:
                pending.length = None
        elif lower == "transfer-encoding" and "chunked" in value.lower():
            pending.chunked = True
        if _http.forwarded(lower):
            pending.headers.append((name, value))

    def endheaders(self, message_body=None, *, encode_chunked=False):
        pending = self._pq_pending
        if pending is None or pending.ended:
            raise _hc.CannotSendHeader()
        pending.ended = True
        # With encode_chunked http.client frames the body itself, so the guest's bytes are
        # the payload; without it, after announcing chunked, they are already framed.
        pending.framed = pending.chunked and not (encode_chunked and self._http_vsn == 11)
        if message_body is not None:
            self._pq_take(message_body, "message_body")
        self._pq_send_when_complete()

    def send(self, data):
        """Takes more of the request's body, after endheaders() (pubfn sends no raw bytes)."""
        pending = self._pq_pending
        if pending is None or not pending.ended:
            raise _hc.CannotSendRequest("send() takes the request's body after endheaders(); "
                                        "pubfn's http.client sends no raw bytes")
        if pending.sent:
            raise _hc.CannotSendRequest("the request was already sent: without a Content-Length "
                                        "or Transfer-Encoding it ends with its headers; pass the "
                                        "body to endheaders() or request()")
        self._pq_take(data, "data")
        self._pq_send_when_complete()

    def getresponse(self):
        pending = self._pq_pending
        if pending is None or not pending.ended:
            raise _hc.ResponseNotReady("no request has been sent on this connection")
        if not pending.sent:
            self._pq_send()  # a body the guest chunked itself, or shorter than it announced
        self._pq_pending = None
        if pending.timeout is not None:
            raise pending.timeout
        return response_from_result(pending.result, pending.method, debuglevel=self.debuglevel,
                                    response_class=self.response_class)

    # --- internals ---

    def _pq_take(self, data, what):
        """Appends `data` (bytes-like, a readable file, or an iterable of bytes-like) to the
        body, as http.client would have sent it."""
        if hasattr(data, "read"):
            chunks = self._read_readable(data)  # encodes a text file as ISO-8859-1, like send()
        else:
            try:
                memoryview(data)
                chunks = (data,)
            except TypeError:
                try:
                    chunks = iter(data)
                except TypeError:
                    raise TypeError(f"{what} should be a bytes-like object or an iterable, got "
                                    f"{type(data)!r}") from None
        body = self._pq_pending.body
        for chunk in chunks:
            body += chunk

    def _pq_send_when_complete(self):
        pending = self._pq_pending
        if pending.framed:
            return  # ends with its last chunk, which is found at getresponse()
        if pending.length is not None and len(pending.body) < pending.length:
            return  # the rest of the announced body comes through send()
        self._pq_send()

    def _pq_send(self):
        pending = self._pq_pending
        pending.sent = True
        body = _dechunk(pending.body) if pending.framed else pending.body
        url = self._pq_url(pending.target)
        if self.debuglevel > 0:
            print(f"send: {pending.method} {url} through the pubfn host, {len(body)} bytes")
        timeout = self.timeout
        if timeout is _GLOBAL_DEFAULT_TIMEOUT:
            timeout = _getdefaulttimeout()
        try:
            pending.result = _http.send(pending.method, url, pending.headers, body,
                                        timeout=timeout)
        except EgressTimeout as exc:
            pending.timeout = exc  # raised by getresponse(), as a read timeout would be
        except BaseException:
            self._pq_pending = None  # free for the next request, as after a failed socket
            raise

    def _pq_url(self, target):
        if not target.startswith("/"):
            return target  # absolute-form, as a proxy would be asked
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == self.default_port else f":{self.port}"
        return f"{self._pq_scheme}://{host}{port}{target}"


class HTTPSConnection(HTTPConnection):
    """http.client.HTTPSConnection, made by the host: TLS is the host's, which verifies every
    certificate against its own trust roots, so `context` and other TLS arguments are accepted
    and ignored."""

    default_port = _hc.HTTPS_PORT
    _pq_scheme = "https"

    def __init__(self, host, port=None, *, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None,
                 context=None, blocksize=8192, **tls_arguments):
        super().__init__(host, port, timeout, source_address, blocksize)
        self._context = context


class HostVerifiedContext:
    """What http.client._create_https_context returns here, in place of an ssl.SSLContext
    (urllib.request's HTTPSHandler makes one): settings on it change nothing, since the host
    verifies every certificate itself."""

    check_hostname = True

    def set_alpn_protocols(self, protocols):
        pass


def _create_https_context(http_version):
    return HostVerifiedContext()


def install():
    """Makes http.client's HTTPConnection and HTTPSConnection the classes above (idempotent)."""
    if _hc.HTTPConnection is HTTPConnection:
        return
    _hc.HTTPConnection = HTTPConnection
    _hc.HTTPSConnection = HTTPSConnection
    _hc._create_https_context = _create_https_context
    if "HTTPSConnection" not in _hc.__all__:
        _hc.__all__.append("HTTPSConnection")
    # Imported too early (not in the runtime, where pq comes first): define HTTPSHandler now.
    urllib_request = sys.modules.get("urllib.request")
    if urllib_request is not None and not hasattr(urllib_request, "HTTPSHandler"):
        importlib.reload(urllib_request)


__all__ = ["HTTPConnection", "HTTPSConnection", "install", "response_from_result"]
