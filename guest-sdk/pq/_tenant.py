"""What a handler keeps outside its request: the tenant's secrets and the endpoint's state."""

import json

import _pq

from . import _abi
from .errors import HostError, SecretNotFound, StateError

_dumps, _loads = json.dumps, json.loads


def get_secret(name):
    """The value (str) of the tenant's secret `name`; raises pq.SecretNotFound if unset."""
    if not isinstance(name, str):
        raise TypeError(f"get_secret() takes a secret name (str), not {type(name).__name__}")
    try:
        return _abi.call(_pq.PQ_OP_SECRET, name.encode()).decode("utf-8")
    except HostError as exc:
        if exc.code == _pq.PQ_E_NOT_FOUND:
            raise SecretNotFound(exc.message) from None
        raise


def get_state():
    """The endpoint's state: the dict last given to set_state(), else {}."""
    return _loads(_abi.call(_pq.PQ_OP_STATE_GET))


def set_state(state):
    """Merges `state`'s top-level keys into the endpoint's state, as Peliqan does (a key set
    to None stays, as null). The merged state is at most 64 KiB of JSON."""
    if not isinstance(state, dict):
        raise TypeError(f"set_state() takes a dict, not {type(state).__name__}")
    try:
        data = _dumps(state, separators=(",", ":"), default=str).encode()
    except (TypeError, ValueError) as exc:
        raise StateError(f"state is not JSON-serialisable: {exc}") from None
    try:
        _abi.call(_pq.PQ_OP_STATE_SET, data)
    except HostError as exc:
        if exc.code in (_pq.PQ_E_TOO_LARGE, _pq.PQ_E_INVALID):
            raise StateError(exc.message) from None
        raise
