"""Exceptions raised by the pq SDK."""

import _pq


class PqError(Exception):
    """Base class of every pq error."""


class HostError(PqError):
    """A host call failed. `code` is one of the PQ_E_* codes of guest-sdk/ABI.md."""

    def __init__(self, code, message):
        super().__init__(message or f"host call failed with code {code}")
        self.code = code
        self.message = message


class DatabaseError(PqError):
    """A pq database call failed."""

    @staticmethod
    def from_host(exc):
        if exc.code == _pq.PQ_E_UNAVAILABLE:
            return DatabaseNotConfigured(exc.message)
        if exc.code == _pq.PQ_E_DENIED:
            return DatabaseNotFound(exc.message)
        return DatabaseError(exc.message or str(exc))


class DatabaseNotConfigured(DatabaseError):
    """This sandbox has no database capability (for example under `pubfn run`)."""


class DatabaseNotFound(DatabaseError):
    """The tenant has no database of that name."""
