"""pq.dbconnect: the handle on a tenant's databases. The host does all the work."""

from . import _abi


class DatabaseConnection:
    """A connection to one of the tenant's named databases."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<pq.DatabaseConnection {self.name!r}>"

    def fetch(self, db, schema=None, table=None, **options):
        """Rows of `schema.table`, or of `query=...` with bound `params=[...]`, as dicts."""
        return _abi.db_call({"op": "fetch", "connection": self.name, "db": db, "schema": schema,
                             "table": table, "options": options})


def dbconnect(name):
    """Opens the tenant's database `name`; raises pq.DatabaseNotFound for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"dbconnect() takes a database name (str), not {type(name).__name__}")
    _abi.db_call({"op": "connect", "connection": name})
    return DatabaseConnection(name)
