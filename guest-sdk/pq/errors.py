"""Exceptions raised by the pq SDK."""

import json

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
    """A pq database call failed. `sqlstate` is PostgreSQL's code when PostgreSQL refused it."""

    def __init__(self, message, sqlstate=None):
        super().__init__(f"{sqlstate}: {message}" if sqlstate else message)
        self.sqlstate = sqlstate
        self.message = message

    @staticmethod
    def from_host(exc):
        if exc.code == _pq.PQ_E_UNAVAILABLE:
            return DatabaseNotConfigured(exc.message)
        if exc.code == _pq.PQ_E_DENIED:
            return DatabaseNotFound(exc.message)
        if exc.code == _pq.PQ_E_DB_UNAVAILABLE:
            return DatabaseUnavailable(exc.message)
        if exc.code == _pq.PQ_E_SQL:
            try:
                detail = json.loads(exc.message)
                return DatabaseError(detail["message"], sqlstate=detail["sqlstate"])
            except (ValueError, KeyError, TypeError):
                pass
        return DatabaseError(exc.message or str(exc))


class DatabaseNotConfigured(DatabaseError):
    """This sandbox has no database capability (for example under `pubfn run`)."""


class DatabaseNotFound(DatabaseError):
    """The tenant has no database of that name."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached right now (the server answers 503 if not caught)."""


class SecretNotFound(PqError, KeyError):
    """The tenant has no secret of that name."""

    def __str__(self):
        return Exception.__str__(self)


class StateError(PqError):
    """The endpoint's state could not be read or written (too large, or not a dict)."""


class ConnectionNotFound(PqError, KeyError):
    """The tenant has no stored connection of that name (pq.connect(name).apicall(...))."""

    def __str__(self):
        return Exception.__str__(self)


# Outbound HTTP (ABI op 20). These are OSError subclasses, as the socket errors they stand in
# for are, so that code written for real sockets catches them where it caught those: urllib
# wraps them into urllib.error.URLError, `except OSError`/`except ConnectionError` still work.

class EgressDenied(PqError, PermissionError):
    """The host refused the outbound request: its host is not on the tenant's egress allow-list,
    or resolves to an address no tenant may reach. The message names the host."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class EgressError(PqError, ConnectionError):
    """An outbound request failed. `reason` says how: "timeout", "connect", "dns", "tls",
    "protocol" or "busy" (the host's own words), "too_large" (the response was over the cap) or
    "unavailable" (this sandbox has no outbound HTTP, e.g. under `pubfn run`)."""

    def __init__(self, message, reason="protocol"):
        # One argument for OSError, so that it does not read (message, reason) as
        # (errno, strerror).
        super().__init__(message)
        self.message = message
        self.reason = reason


class EgressTimeout(EgressError, TimeoutError):
    """The outbound request ran out of time (its own timeout, or the request's deadline)."""

    def __init__(self, message, reason="timeout"):
        super().__init__(message, reason)


class EgressTooLarge(EgressError):
    """The response's body was over the host's cap."""

    def __init__(self, message, reason="too_large"):
        super().__init__(message, reason)
