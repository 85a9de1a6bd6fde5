"""The basics every protobuf conversion of the remote client uses (timestamps, optionals, enums).

Split from :mod:`proximity_sdk._remote._convert` so that a client using one part of the API (the
catalog, say) converts its answers without importing every message and model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from proximity_sdk.errors import ValidationError

__all__ = ["timestamp_to_pb"]


def _ts(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def _ts_required(message: Any, field: str) -> datetime:
    value = _ts(message, field)
    if value is None:  # the agent always sets these; a zero time beats a crash on a partial answer
        return datetime.fromtimestamp(0, UTC)
    return value


def timestamp_to_pb(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return stamp


def _opt(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _json(text: str, default: Any) -> Any:
    return json.loads(text) if text else default


def _enum_names(prefix: str, values: Iterable[str]) -> dict[str, str]:
    """pb enum name -> model value, the inverse of the agent's ``_enum_to_pb``."""
    return {prefix + value.upper().replace("-", "_"): value for value in values}


def _enum_from_pb(prefix: str, enum_type: Any, number: int, values: Iterable[str], default: str) -> str:
    if number == 0:
        return default
    return _enum_names(prefix, values).get(enum_type.Name(number), default)


def _enum_to_pb(prefix: str, enum_type: Any, value: str) -> Any:
    return enum_type.Value(prefix + value.upper().replace("-", "_"))


def _choice(value: object, allowed: Iterable[str], field: str) -> str:
    """As the local SDK refuses an unknown choice, with the same words."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"unknown {field} {value!r}; one of {', '.join(allowed)}", field=field)
    return value
