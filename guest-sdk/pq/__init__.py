"""pq: what a pubfn handler can reach of its host.

`pq` itself, `request` and `RUN_CONTEXT` are globals of every handler's module, as in Peliqan:
no import needed. `pq.request` is the current request; `pq.dbconnect(name)` opens one of the
tenant's databases (`pq.DW_NAME` names its default warehouse); `pq.get_secret(name)` reads one
of its secrets; `pq.get_state()` / `pq.set_state(dict)` keep a small state per endpoint;
`pq.connect(name)` calls an API through one of its stored connections.

Outbound HTTP goes through the host (there are no sockets): importing pq routes http.client,
urllib.request and requests through it (pq/_httpclient.py, pq/_requests.py).
"""

# Where a handler runs, as Peliqan names it.
RUN_CONTEXT = "api_handler"
# The tenant's default warehouse (its first managed database), set for each request.
DW_NAME = None

# urllib3 before the install below: its connection classes subclass http.client's at import and
# must keep the socket-based originals, whose methods they override, rather than half of the
# host-call ones (requests does not use them; urllib3 used directly fails to connect, plainly).
try:
    import urllib3  # noqa: F401
except ImportError:
    pass

# Then, before anything imports urllib.request (which decides at import time whether HTTPS
# exists), http.client through the host (pq/_httpclient.py).
from . import _httpclient
_httpclient.install()

from . import _requests
_requests.install()

from ._connect import Connection, connect
from ._db import DatabaseConnection, dbconnect, load_table
from ._request import Headers, Request, request
from ._tenant import get_secret, get_state, set_state
from .errors import (ConnectionNotFound, DatabaseError, DatabaseNotConfigured, DatabaseNotFound,
                     DatabaseUnavailable, EgressDenied, EgressError, EgressTimeout,
                     EgressTooLarge, HostError, PqError, SecretNotFound, StateError)

__all__ = ["DW_NAME", "RUN_CONTEXT", "Connection", "ConnectionNotFound", "DatabaseConnection",
           "DatabaseError", "DatabaseNotConfigured", "DatabaseNotFound", "DatabaseUnavailable",
           "EgressDenied", "EgressError", "EgressTimeout", "EgressTooLarge", "Headers",
           "HostError", "PqError", "Request", "SecretNotFound", "StateError", "connect",
           "dbconnect", "get_secret", "get_state", "load_table", "request", "set_state"]
