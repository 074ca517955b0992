"""`requests` through the host: install() replaces `requests.adapters.HTTPAdapter.send`, so
every Session (and requests.get & co.) makes each request with one host call (ABI op 20, see
pq/_http.py) instead of a urllib3 connection pool, which would need sockets.

The response is built the way the real adapter builds it: a genuine http.client.HTTPResponse
(pq/_httpclient.py) wrapped in a urllib3.HTTPResponse and handed to the adapter's own
build_response(), so cookies, encodings, gzip decoding, iter_content(), .raw and .json() behave
as they do with sockets. requests follows redirects itself, so the host does not.

What a socket-free adapter cannot honour: `verify`, `cert` and `proxies` are ignored (the host
makes the TLS connection and verifies every certificate against its own trust roots; there are
no proxies), and `stream=True` still receives the whole body at once. `max_retries` is honoured
the way urllib3 honours it (connection errors, read errors for idempotent methods, statuses in
status_forcelist, Retry-After).
"""

from . import _http, _httpclient
from .errors import EgressDenied, EgressError, EgressTimeout, EgressTooLarge

_HTTP_VERSIONS = {"HTTP/1.0": 10, "HTTP/1.1": 11, "HTTP/2": 20, "HTTP/2.0": 20, "HTTP/3": 30}
_READ_BLOCK = 64 * 1024

# Set by install(): the parts of requests and urllib3 the adapter uses.
_rq = None


class _Requests:
    """The names send() needs, looked up once at install time."""

    def __init__(self):
        import requests.exceptions as rexc
        import requests.utils
        import urllib3
        import urllib3.exceptions as uexc
        from urllib3.util.retry import Retry

        self.exc, self.uexc = rexc, uexc
        self.HTTPResponse, self.HTTPHeaderDict = urllib3.HTTPResponse, urllib3.HTTPHeaderDict
        self.Timeout, self.Retry = urllib3.Timeout, Retry
        self.urldefragauth = requests.utils.urldefragauth


def install():
    """Routes requests' HTTPAdapter through the host; False if requests is not installed."""
    global _rq
    try:
        import requests.adapters
        _rq = _rq or _Requests()
    except ImportError:
        return False
    requests.adapters.HTTPAdapter.send = send
    return True


def _seconds(value):
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # None, or urllib3's "default" sentinel: no limit of its own
    return float(value)


def _timeout(timeout):
    """One number of seconds for the whole request (the host has no separate connect and read
    timeouts): the sum of a (connect, read) pair, None if either part is unlimited."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
        except ValueError:
            raise ValueError(f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                             "or a single float to set both timeouts to the same value.") from None
        parts = (connect, read)
    elif isinstance(timeout, _rq.Timeout):
        if _seconds(timeout.total) is not None:
            return _seconds(timeout.total)
        parts = (timeout._connect, timeout._read)
    else:
        parts = (timeout,)
    seconds = [_seconds(part) for part in parts]
    return None if None in seconds else sum(seconds)


def _body(body):
    """The whole request body as bytes, from anything requests may have prepared: str (sent as
    UTF-8, as urllib3 2 does), bytes-like, a file (text files as UTF-8) or an iterable."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return body
    if hasattr(body, "read"):
        out = bytearray()
        while chunk := body.read(_READ_BLOCK):
            out += chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        return out
    try:
        return memoryview(body).tobytes()
    except TypeError:
        pass
    out = bytearray()
    for chunk in body:
        out += chunk.encode("utf-8") if isinstance(chunk, str) else chunk
    return out


def _header_text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _as_urllib3_error(exc, url):
    """The urllib3 error a socket adapter would have met, for Retry's bookkeeping: errors before
    the request left count as connection errors, the others as read errors."""
    if exc.reason in ("connect", "dns", "tls", "busy"):
        return _rq.uexc.NewConnectionError(None, str(exc))
    if isinstance(exc, EgressTimeout):
        return _rq.uexc.ReadTimeoutError(None, url, str(exc))
    return _rq.uexc.ProtocolError(str(exc), exc)


def _requests_error(exc, request):
    """The requests exception for a failed host call; the pq exception stays its first argument
    (and its __cause__)."""
    rexc = _rq.exc
    if isinstance(exc, EgressTimeout):
        return rexc.ReadTimeout(exc, request=request)
    if isinstance(exc, EgressError) and exc.reason == "tls":
        return rexc.SSLError(exc, request=request)
    if isinstance(exc, (EgressDenied, EgressError)):
        return rexc.ConnectionError(exc, request=request)
    if isinstance(exc, _http.InvalidRequest):  # the URL, method or a header is malformed
        if "header" in str(exc).lower():
            return rexc.InvalidHeader(exc, request=request)
        return rexc.InvalidURL(exc, request=request)
    return exc


def _retryable(exc):
    return (isinstance(exc, EgressError) and not isinstance(exc, EgressTooLarge)
            and exc.reason != "unavailable")


def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
    """Sends a PreparedRequest through the pubfn host and returns a requests.Response.

    `verify`, `cert` and `proxies` are ignored: the host makes the connection and verifies
    every certificate against its own trust roots, and there are no proxies."""
    self.add_headers(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                     proxies=proxies)
    method = request.method.upper() if isinstance(request.method, str) else request.method
    url = _rq.urldefragauth(request.url)  # userinfo became an Authorization header already
    headers = [(_header_text(name), _header_text(value))
               for name, value in request.headers.items()
               if _http.forwarded(_header_text(name))]
    body = _body(request.body)
    seconds = _timeout(timeout)
    retries = self.max_retries
    while True:
        try:
            result = _http.send(method, url, headers, body, timeout=seconds)
        except (EgressDenied, EgressError, _http.InvalidRequest) as exc:
            if not _retryable(exc) or not isinstance(retries, _rq.Retry):
                raise _requests_error(exc, request) from exc
            try:
                retries = retries.increment(method, url, error=_as_urllib3_error(exc, url))
            except _rq.uexc.HTTPError:  # exhausted, or not to be retried
                raise _requests_error(exc, request) from exc
            retries.sleep()
            continue
        raw = _httpclient.response_from_result(result, method, url)
        response = _rq.HTTPResponse(
            body=raw, headers=_rq.HTTPHeaderDict(raw.msg.items()), status=raw.status,
            version=_HTTP_VERSIONS.get(result.version, 11), version_string=result.version,
            reason=raw.reason, preload_content=False, decode_content=False,
            original_response=raw, retries=retries, enforce_content_length=True,
            request_method=method, request_url=url)
        if isinstance(retries, _rq.Retry) and retries.is_retry(
                method, response.status, bool(response.headers.get("Retry-After"))):
            try:
                retries = retries.increment(method, url, response=response)
            except _rq.uexc.MaxRetryError as exc:
                if retries.raise_on_status:
                    raise _rq.exc.RetryError(exc, request=request) from None
            else:
                response.drain_conn()
                retries.sleep(response)
                continue
        return self.build_response(request, response)


send._pq_host_call = True

__all__ = ["install", "send"]
