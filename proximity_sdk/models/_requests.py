"""Turning keyword arguments into a request model, with pydantic's errors as one ``ValidationError``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pydantic

from proximity_sdk.errors import ValidationError

__all__ = ["check_ports", "check_stop_args", "checked", "from_pydantic", "validate_request"]

M = TypeVar("M", bound=pydantic.BaseModel)


def validate_request(model: type[M], request: M | None, fields: dict[str, Any], *, what: str) -> M:
    """Accept either a ready request model or its fields as keyword arguments, never both.

    pydantic's errors become one ``ValidationError`` naming the first bad field.
    """
    if request is not None:
        if fields:
            raise ValidationError(f"{what}: give a {model.__name__} or keyword arguments, not both")
        if not isinstance(request, model):
            raise ValidationError(f"{what}: expected a {model.__name__}, got {type(request).__name__}")
        return request
    try:
        return model(**fields)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc, what=what) from None


def from_pydantic(exc: pydantic.ValidationError, *, what: str) -> ValidationError:
    problems = []
    first_field: str | None = None
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{loc}: {message}" if loc else message)
        if first_field is None and loc:
            first_field = loc
    return ValidationError(f"invalid {what}: " + "; ".join(problems), field=first_field)


def checked(build: Callable[[], M], *, what: str) -> M:
    """Run a model constructor, turning pydantic errors into ours."""
    try:
        return build()
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc, what=what) from None


def check_stop_args(*, force: object, timeout: object) -> tuple[bool | None, int | None]:
    """The stop's arguments as given (None: the app's default), checked."""
    if force is not None and not isinstance(force, bool):
        raise ValidationError(f"force must be True, False or None (the app's default), not {force!r}", field="force")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                or not 1 <= timeout <= 3600):
        raise ValidationError("timeout must be whole seconds from 1 to 3600, or None (the app's default)",
                              field="timeout")
    return force, timeout


def check_ports(ports: Sequence[int]) -> None:
    """The ports an image listens on: port numbers (not a string of digits, not booleans)."""
    if isinstance(ports, (str, bytes)) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports):
        raise ValidationError("ports must be a list of port numbers from 1 to 65535", field="ports")
