"""What both ends know about a failed call, beside its status code and details: the trailing
metadata that names the SDK's exception, so that a remote client raises the class the agent
raised, with the same ``field`` and ``hint``.

The agent (``proximity_agent/status.py``) writes it with :func:`error_to_metadata`; the remote
client (``proximity_sdk/_remote/_errors.py``) reads it with :func:`error_from_metadata` and
:func:`error_class`. A failure without ``proximity-error-kind`` comes from the transport.
No pydantic and no grpc here: every client imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proximity_sdk import errors

__all__ = [
    "AGENT_ERROR_KINDS",
    "ERROR_FIELD_KEY",
    "ERROR_HINT_KEY",
    "ERROR_KIND_KEY",
    "INTERNAL_ERROR_KIND",
    "WireError",
    "error_class",
    "error_from_metadata",
    "error_to_metadata",
]

ERROR_KIND_KEY = "proximity-error-kind"
ERROR_FIELD_KEY = "proximity-error-field"
ERROR_HINT_KEY = "proximity-error-hint"

# the kind of an unexpected exception, whose details the agent keeps to its log
INTERNAL_ERROR_KIND = "InternalError"

# The agent's own classes (status.py) subclass these; a client knows the SDK's tree only.
AGENT_ERROR_KINDS: Mapping[str, type[errors.ProximityError]] = {
    "CallerNotAuthenticated": errors.AuthenticationError,
    "CallerNotAllowed": errors.PermissionDeniedError,
    "CallerOverQuota": errors.BusyError,
    INTERNAL_ERROR_KIND: errors.ProximityError,
}

_FIELD_LIMIT = 200
_HINT_LIMIT = 1000


@dataclass(frozen=True)
class WireError:
    """The exception named in a failed call's trailing metadata: its class name, and the
    ValidationError's ``field`` and every error's ``hint`` when they have one."""

    kind: str
    field: str | None = None
    hint: str | None = None


def _ascii(text: str, limit: int) -> str:
    # metadata values must be printable ASCII
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:limit]


def error_to_metadata(error: WireError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata of a failed call; an empty field or hint is left out."""
    metadata = [(ERROR_KIND_KEY, error.kind)]
    if error.field:
        metadata.append((ERROR_FIELD_KEY, _ascii(error.field, _FIELD_LIMIT)))
    if error.hint:
        metadata.append((ERROR_HINT_KEY, _ascii(error.hint, _HINT_LIMIT)))
    return tuple(metadata)


def error_from_metadata(metadata: Mapping[str, str]) -> WireError | None:
    """What the agent said about the error; None when it said nothing (a transport failure)."""
    kind = metadata.get(ERROR_KIND_KEY)
    if kind is None:
        return None
    return WireError(kind=kind, field=metadata.get(ERROR_FIELD_KEY), hint=metadata.get(ERROR_HINT_KEY))


def error_class(kind: str) -> type[errors.ProximityError]:
    """The SDK's class for a kind: the agent's own classes map to their SDK base, and a class this
    SDK does not know (from a newer agent) to ProximityError."""
    if kind in AGENT_ERROR_KINDS:
        return AGENT_ERROR_KINDS[kind]
    found = getattr(errors, kind, None) if kind in errors.__all__ else None
    if isinstance(found, type) and issubclass(found, errors.ProximityError):
        return found
    return errors.ProximityError
