"""pq: what a pubfn handler can reach of its host.

`pq` itself, `request` and `RUN_CONTEXT` are globals of every handler's module, as in Peliqan:
no import needed. `pq.request` is the current request; `pq.dbconnect(name)` opens one of the
tenant's databases (`pq.DW_NAME` names its default warehouse); `pq.get_secret(name)` reads one
of its secrets; `pq.get_state()` / `pq.set_state(dict)` keep a small state per endpoint.
"""

# Where a handler runs, as Peliqan names it.
RUN_CONTEXT = "api_handler"
# The tenant's default warehouse (its first managed database), set for each request.
DW_NAME = None

from ._db import DatabaseConnection, dbconnect, load_table
from ._request import Headers, Request, request
from ._tenant import get_secret, get_state, set_state
from .errors import (DatabaseError, DatabaseNotConfigured, DatabaseNotFound,
                     DatabaseUnavailable, HostError, PqError, SecretNotFound, StateError)

__all__ = ["DW_NAME", "RUN_CONTEXT", "DatabaseConnection", "DatabaseError", "DatabaseNotConfigured", "DatabaseNotFound",
           "DatabaseUnavailable", "Headers", "HostError", "PqError", "Request", "SecretNotFound",
           "StateError", "dbconnect", "get_secret", "get_state", "load_table", "request",
           "set_state"]
