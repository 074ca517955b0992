"""pq: what a pubfn handler can reach of its host.

`pq.request` is the current request (also injected as the global `request` of the handler's
module); `pq.dbconnect(name)` opens one of the tenant's databases; `pq.get_secret(name)` reads
one of its secrets; `pq.get_state()` / `pq.set_state(dict)` keep a small state per endpoint.
"""

from ._db import DatabaseConnection, dbconnect
from ._request import Headers, Request, request
from ._tenant import get_secret, get_state, set_state
from .errors import (DatabaseError, DatabaseNotConfigured, DatabaseNotFound,
                     DatabaseUnavailable, HostError, PqError, SecretNotFound, StateError)

__all__ = ["DatabaseConnection", "DatabaseError", "DatabaseNotConfigured", "DatabaseNotFound",
           "DatabaseUnavailable", "Headers", "HostError", "PqError", "Request", "SecretNotFound",
           "StateError", "dbconnect", "get_secret", "get_state", "request", "set_state"]
