"""pq: what a pubfn handler can reach of its host.

`pq.request` is the current request (also injected as the global `request` of the handler's
module); `pq.dbconnect(name)` opens one of the tenant's databases.
"""

from ._db import DatabaseConnection, dbconnect
from ._request import Headers, Request, request
from .errors import (DatabaseError, DatabaseNotConfigured, DatabaseNotFound,
                     DatabaseUnavailable, HostError, PqError)

__all__ = ["DatabaseConnection", "DatabaseError", "DatabaseNotConfigured", "DatabaseNotFound",
           "DatabaseUnavailable",
           "Headers", "HostError", "PqError", "Request", "dbconnect", "request"]
