"""The outbound-HTTP host call (ABI op 20, `PQ_OP_HTTP`), and nothing above it.

Every way a handler reaches the network ends here: `http.client` and `urllib.request`
(pq/_httpclient.py), `requests` (pq/_requests.py) and `pq.connect(...)` (pq/_connect.py). There
are no sockets in the sandbox; the host makes the request, checks it against the tenant's egress
allow-list, and answers with the whole response.

The wire (guest-sdk/ABI.md, "Outbound HTTP"): the argument is a little-endian u32 N, N bytes of
UTF-8 JSON head `{"method", "url", "headers", "connection", "follow_redirects", "timeout"}`, then
the raw request body; the result is framed the same way, with the head
`{"status", "reason", "headers", "url", "version"}`. Header values travel as Latin-1 text (each
character is one byte), as in the request head of op 1.
"""

import collections
import json
import math
import struct

import _pq

from .errors import (ConnectionNotFound, EgressDenied, EgressError, EgressTimeout,
                     EgressTooLarge, HostError)

# Bound once, at snapshot time, so a handler patching json, struct or _pq cannot break the wire.
_dumps, _loads = json.dumps, json.loads
_u32 = struct.Struct("<I")
_pack_u32, _unpack_u32 = _u32.pack, _u32.unpack_from
_call = _pq.call
_HostErrorRaw = _pq.HostError
_isfinite = math.isfinite
_OP_HTTP = _pq.PQ_OP_HTTP
_E_DENIED, _E_NETWORK = _pq.PQ_E_DENIED, _pq.PQ_E_NETWORK
_E_TOO_LARGE, _E_INVALID = _pq.PQ_E_TOO_LARGE, _pq.PQ_E_INVALID
_E_NOT_FOUND, _E_UNAVAILABLE = _pq.PQ_E_NOT_FOUND, _pq.PQ_E_UNAVAILABLE

# Headers the host sets itself (it frames the body and names the host from the URL) and drops
# from a request; the SDK leaves them out already, so that a body the guest framed is not
# misread.
HOST_OWNED_HEADERS = frozenset((
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
    "upgrade", "http2-settings", "proxy-connection", "proxy-authorization", "proxy-authenticate"))


def forwarded(name):
    """Whether a request header named `name` is sent on (the host owns the others)."""
    name = name.lower()
    return name not in HOST_OWNED_HEADERS and not name.startswith("proxy-")


class InvalidRequest(ValueError):
    """The host refused the request as malformed (PQ_E_INVALID): its URL, method, a header or
    the framing. A ValueError, told apart from the SDK's own argument checks."""


HttpResult = collections.namedtuple("HttpResult", "status reason headers url version body")
HttpResult.__doc__ = """One response: `status` (int), `reason` (str), `headers` (a list of
(name, value) pairs, values as Latin-1 text, in the order the server sent them), `url` (the URL
that answered, after any redirects the host followed), `version` ("HTTP/1.1", "HTTP/2", ...) and
`body` (bytes, de-chunked but still in its Content-Encoding)."""


def _latin1(text, what):
    """`text` as header text: str whose characters are bytes. bytes are taken as Latin-1."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("latin-1")
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str or bytes, not {type(text).__name__}")
    text.encode("latin-1")  # raises UnicodeEncodeError, as http.client does, above U+00FF
    return text


def _timeout(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None, not "
                        f"{type(timeout).__name__}")
    timeout = float(timeout)
    if not _isfinite(timeout) or timeout < 0:
        raise ValueError(f"timeout must be a non-negative number of seconds, not {timeout}")
    return timeout


def error_from_host(code, message):
    """The exception for a failed op 20 (see the error list of ABI.md's "Outbound HTTP")."""
    if code == _E_DENIED:
        return EgressDenied(message or "egress is not allowed")
    if code == _E_NETWORK:
        try:
            detail = _loads(message)
            reason, text = str(detail["reason"]), str(detail["message"])
        except (ValueError, KeyError, TypeError):
            reason, text = "protocol", message
        if reason == "timeout":
            return EgressTimeout(text or "the outbound request timed out")
        return EgressError(text or f"the outbound request failed ({reason})", reason)
    if code == _E_TOO_LARGE:
        return EgressTooLarge(message or "the response is over the size limit")
    if code == _E_INVALID:
        return InvalidRequest(message or "invalid outbound request")
    if code == _E_NOT_FOUND:
        return ConnectionNotFound(message or "no such connection")
    if code == _E_UNAVAILABLE:
        return EgressError(message or "no outbound HTTP in this sandbox", "unavailable")
    return HostError(code, message)


def send(method, url, headers=(), body=b"", *, connection=None, follow_redirects=False,
         timeout=None):
    """Makes one request through the host and returns its HttpResult.

    `headers` is an iterable of (name, value) pairs (str or bytes; values are sent as their
    Latin-1 bytes); `body` is bytes-like. With `connection`, `url` is a path below that stored
    connection's base URL and the host adds its credentials. `timeout` is in seconds (the host
    also stops at the request's deadline). Raises pq.EgressDenied, pq.EgressError (and its
    EgressTimeout and EgressTooLarge), pq.ConnectionNotFound, InvalidRequest (a ValueError)
    for a request the host refuses as malformed, pq.HostError otherwise.
    """
    if not isinstance(method, str) or not isinstance(url, str):
        raise TypeError("method and url must be str")
    if connection is not None and not isinstance(connection, str):
        raise TypeError(f"connection must be a name (str), not {type(connection).__name__}")
    head = {
        "method": method,
        "url": url,
        "headers": [[_latin1(name, "a header name"), _latin1(value, "a header value")]
                    for name, value in headers],
        "connection": connection,
        "follow_redirects": bool(follow_redirects),
        "timeout": _timeout(timeout),
    }
    # ensure_ascii: the head is then ASCII whatever the URL holds, and its length is its size.
    encoded = _dumps(head, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    try:
        raw = _call(_OP_HTTP, b"".join((_pack_u32(len(encoded)), encoded, body or b"")))
    except _HostErrorRaw as exc:
        code, message = exc.args
        raise error_from_host(code, message) from None
    return _decode(raw)


def _decode(raw):
    if len(raw) < 4:
        raise EgressError("the host's answer to an outbound request is malformed")
    (size,) = _unpack_u32(raw)
    if 4 + size > len(raw):
        raise EgressError("the host's answer to an outbound request is malformed")
    head = _loads(raw[4:4 + size])
    return HttpResult(int(head["status"]), str(head.get("reason") or ""),
                      [(str(name), str(value)) for name, value in head.get("headers") or ()],
                      str(head.get("url") or ""), str(head.get("version") or "HTTP/1.1"),
                      raw[4 + size:])


__all__ = ["HOST_OWNED_HEADERS", "HttpResult", "InvalidRequest", "error_from_host", "forwarded",
           "send"]
