"""The helpers every module of ``_wire`` builds on: timestamps, optional fields, JSON text, enum
values <-> model strings, field masks and choices. One name per meaning and per direction.

Requests are read strictly (:func:`enum_from_pb` refuses an unknown number with a
``ValidationError`` naming the field); answers are read tolerantly (:func:`known_enum_from_pb`
maps a value this client does not know to a default), so an older client keeps working against
a newer agent. No models and no pydantic here: a ``_wire`` module costs what its own proto file
and models cost, no more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    import pydantic
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

__all__ = [
    "enum_from_pb",
    "enum_to_pb",
    "invalid_field",
    "json_from_pb",
    "json_to_pb",
    "known_enum_from_pb",
    "mask_paths_from_pb",
    "optional_from_pb",
    "required_timestamp_from_pb",
    "timestamp_from_pb",
    "timestamp_to_pb",
]


# -- timestamps ----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@overload
def timestamp_to_pb(value: datetime) -> Timestamp: ...
@overload
def timestamp_to_pb(value: None) -> None: ...
def timestamp_to_pb(value: datetime | None) -> Timestamp | None:
    """A Timestamp (a naive datetime is taken as UTC); None stays None, so the field stays unset."""
    if value is None:
        return None
    # arithmetic rather than Timestamp.FromDatetime (utctimetuple + timegm): the same normalised
    # value (nanos in [0, 1e9), before the epoch too) at a third of the cost; a page of 100 apps
    # carries 300 timestamps
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000)


def timestamp_from_pb(message: Any, field: str) -> datetime | None:
    """A Timestamp field of ``message`` as an aware datetime, None when absent."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def required_timestamp_from_pb(message: Any, field: str) -> datetime:
    """A Timestamp field the agent always sets; absent, the epoch."""
    value = timestamp_from_pb(message, field)
    if value is None:  # a zero time beats a crash on a partial answer
        return datetime.fromtimestamp(0, UTC)
    return value


# -- optional fields, JSON text ------------------------------------------------------------------


def optional_from_pb(message: Any, field: str) -> Any:
    """An ``optional`` field's value, None when unset."""
    return getattr(message, field) if message.HasField(field) else None


# built once: json.dumps builds an encoder per call, about 0.5 of the ~4.5 us an app's config costs
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def json_to_pb(value: Any) -> str:
    """A JSON value as the text a ``*_json`` field carries (keys sorted, compact)."""
    return _JSON.encode(value)


def json_from_pb(text: str, *, default: Any) -> Any:
    """The value of a ``*_json`` field; ``default`` when it is empty."""
    return json.loads(text) if text else default


# -- enums ---------------------------------------------------------------------------------------

_Number = TypeVar("_Number", bound=int)


def enum_to_pb(prefix: str, enum_type: _EnumTypeWrapper[_Number], value: str) -> _Number:
    """The enum number of a model string: ``("APP_STATUS_", AppStatus, "running")`` -> APP_STATUS_RUNNING."""
    return enum_type.Value(prefix + value.upper().replace("-", "_"))


def enum_from_pb(prefix: str, enum_type: _EnumTypeWrapper[Any], number: int, *, field: str | None = None) -> str | None:
    """A request's enum as the model string; None when unspecified (0). An unknown number is
    refused (``ValidationError`` naming ``field``). Underscores stay underscores: no request enum
    has a value with a hyphen (``enum_to_pb`` writes ``app-key`` as ``..._APP_KEY``)."""
    if number == 0:
        return None
    try:
        name: str = enum_type.Name(number)
    except ValueError:
        raise ValidationError(f"unknown {prefix.lower().rstrip('_')} value {number}", field=field) from None
    return name.removeprefix(prefix).lower()


def known_enum_from_pb(
    prefix: str, enum_type: _EnumTypeWrapper[Any], number: int, *, known: Iterable[str], default: str
) -> str:
    """An answer's enum as the model string, among the ``known`` values; ``default`` when it is
    unspecified or a value this client does not know (from a newer agent)."""
    if number == 0:
        return default
    names = {prefix + value.upper().replace("-", "_"): value for value in known}
    return names.get(enum_type.Name(number), default)


# -- checks of what is sent, refusals of what is read --------------------------------------------


def mask_paths_from_pb(mask: FieldMask, allowed: Iterable[str], *, what: str) -> list[str]:
    """The paths of an update mask, each once; an empty mask or an unknown path is refused."""
    paths = list(dict.fromkeys(mask.paths))
    if not paths:
        raise ValidationError(f"update_mask is empty: name the {what} fields to change", field="update_mask")
    known = set(allowed)
    unknown = [p for p in paths if p not in known]
    if unknown:
        raise ValidationError(
            f"update_mask names unknown {what} field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            field="update_mask",
        )
    return paths


def invalid_field(exc: pydantic.ValidationError, *, field: str) -> ValidationError:
    """The SDK's ValidationError for a model that refused a request's message under ``field``,
    naming the first bad sub-field (``resources.cores``)."""
    problem = exc.errors()[0]
    where = ".".join(str(p) for p in problem["loc"])
    return ValidationError(f"{field}.{where}: {problem['msg']}", field=f"{field}.{where}")
