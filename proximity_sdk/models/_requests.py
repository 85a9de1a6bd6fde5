"""The checks of a request's arguments, shared by the local SDK (``_resources``, the operations'
``submit_*``) and the remote client (``_remote``): each lives here once, so both refuse the same
input with the same ``ValidationError`` (the remote client before anything is sent). Also turning
keyword arguments into a request model, with pydantic's errors as one ``ValidationError``.

Cheap to import (the agent client imports it): the models a check needs are imported by the check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pydantic

from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    from proximity_sdk.models.app import DeployStrategy
    from proximity_sdk.models.resources import Resources
    from proximity_sdk.models.update import UpdateWindow

__all__ = [
    "MAX_LOG_TAIL",
    "REFERENCE_PATTERN",
    "STRATEGIES",
    "check_after",
    "check_aware_time",
    "check_choice",
    "check_grace_seconds",
    "check_keep",
    "check_log_tail",
    "check_note",
    "check_ports",
    "check_reference",
    "check_resources",
    "check_stop_args",
    "check_strategy",
    "check_target_name",
    "check_update_window",
    "check_version",
    "check_wait_timeout",
    "check_whole_seconds",
    "checked",
    "from_pydantic",
    "host_ca_pem",
    "validate_request",
]

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
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 3600):
        raise ValidationError(
            "timeout must be whole seconds from 1 to 3600, or None (the app's default)", field="timeout"
        )
    return force, timeout


def check_whole_seconds(value: object, *, field: str) -> int:
    """Whole seconds from 1 to 3600 (``migrate``'s ``shutdown_timeout``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        raise ValidationError(f"{field} must be whole seconds from 1 to 3600", field=field)
    return value


def check_choice(value: object, allowed: tuple[str, ...], *, field: str) -> str:
    """One of ``allowed`` (a backup's mode or compression, a status filter)."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"unknown {field} {value!r}; one of {', '.join(allowed)}", field=field)
    return value


# deploy ---------------------------------------------------------------------------------------------

#: the deploy strategies (``DeployStrategy``)
STRATEGIES = ("auto", "oci", "compose")


def check_strategy(strategy: object) -> DeployStrategy:
    if strategy not in STRATEGIES:
        raise ValidationError(
            f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}",
            field="strategy",
            hint='"auto" deploys as a native OCI container where the app and node allow it',
        )
    return cast("DeployStrategy", strategy)


# The `reference` pattern of oci-registry-pull in the PVE 9.1 schema (apidata.json), verbatim:
# [registry[:port]/]name[/name...]:tag. A digest (@sha256:...) is not accepted by PVE.
_COMPONENT = r"[a-z\d]+(?:(?:[._]|__|[-]*)[a-z\d]+)*"
_DOMAIN_LABEL = r"(?:[a-zA-Z\d]|[a-zA-Z\d][a-zA-Z\d-]*[a-zA-Z\d])"
REFERENCE_PATTERN = re.compile(
    rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*(?::\d+)?/)?{_COMPONENT}(?:/{_COMPONENT})*:\w[\w.-]{{0,127}}$"
)


def check_reference(reference: object, *, field: str = "reference") -> str:
    """An OCI image reference PVE accepts (``registry/name:tag``); a ValidationError naming ``field``."""
    if not isinstance(reference, str) or len(reference) > 512 or not REFERENCE_PATTERN.match(reference):
        shown = repr(reference) if isinstance(reference, str) else type(reference).__name__
        hint = "Use [registry[:port]/]name[/name...]:tag in lowercase, e.g. ghcr.io/owner/app:1.2 or nginx:1.27"
        if isinstance(reference, str) and "@" in reference:
            hint = "PVE pulls by tag only: give the tag instead of the digest"
        elif isinstance(reference, str) and ":" not in reference.rsplit("/", 1)[-1]:
            hint = "Add the tag (e.g. :latest or :1.2.3); PVE needs one"
        raise ValidationError(f"{field} {shown} is not an OCI image reference PVE can pull", field=field, hint=hint)
    return reference


def check_resources(resources: object) -> Resources:
    from proximity_sdk.models.resources import Resources

    if not isinstance(resources, Resources):
        raise ValidationError("resources must be a Resources(...)", field="resources")
    return resources


# apps -----------------------------------------------------------------------------------------------

#: what one logs call may return: a member's call holds a thread of the agent while it runs
MAX_LOG_TAIL = 10_000


def check_log_tail(tail: object) -> int:
    if isinstance(tail, bool) or not isinstance(tail, int) or not 1 <= tail <= MAX_LOG_TAIL:
        raise ValidationError(f"tail must be a number of lines from 1 to {MAX_LOG_TAIL}", field="tail")
    return tail


def check_version(version: object) -> str | None:
    """A catalog version to update to, or None (the catalog's)."""
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValidationError("version must be a catalog version string", field="version")
    return version


def check_update_window(window: object) -> UpdateWindow | None:
    from proximity_sdk.models.update import UpdateWindow

    if window is not None and not isinstance(window, UpdateWindow):
        raise ValidationError("window must be an UpdateWindow(start='03:00', ...) or None", field="window")
    return window


def check_aware_time(value: object, *, field: str = "now") -> datetime | None:
    """A timezone-aware datetime, or None (now)."""
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValidationError(f"{field} must be a timezone-aware datetime", field=field)
    return value


# backups --------------------------------------------------------------------------------------------


def check_note(note: object) -> str | None:
    if note is not None and (not isinstance(note, str) or len(note) > 1024):
        raise ValidationError("note must be text of at most 1024 characters", field="note")
    return note


def check_target_name(target: object) -> str | None:
    """The name of a backup target, or None (whether it is configured is the store's to say)."""
    if target is not None and not isinstance(target, str):
        raise ValidationError("target must be the name of a configured target, or None", field="target")
    return target


def check_keep(value: object, *, field: str) -> int | None:
    """A retention count (``keep_last``, ...) from 1 to 10000, or None (the rule is off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationError(f"{field} must be a whole number from 1 to 10000, or None", field=field)
    return value


# maintenance ----------------------------------------------------------------------------------------


def check_grace_seconds(seconds: object) -> float | None:
    """The janitor's ``hard_grace_seconds``: 0 or more, or None (its default)."""
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
        raise ValidationError("hard_grace_seconds must be a number of seconds, 0 or more", field="hard_grace_seconds")
    return seconds


# hosts ----------------------------------------------------------------------------------------------


def _read_ca_file(ca_file: str | Path) -> str:
    """The PEM text of a CA file, read by the caller's side (so it can travel to an agent too)."""
    path = Path(ca_file).expanduser()
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ValidationError(
            f"CA file {str(path)!r} does not exist",
            field="ca_file",
            hint="Copy the cluster CA (/etc/pve/pve-root-ca.pem on a node) and give its path",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"CA file {str(path)!r} cannot be read: {exc}", field="ca_file") from None


def host_ca_pem(ca_file: str | Path, *, ca_pem_given: bool) -> str:
    """The PEM text of a host's ``ca_file``, refused beside a ``ca_pem`` in the same request."""
    if ca_pem_given:
        raise ValidationError("give ca_file or ca_pem, not both", field="ca_file")
    return _read_ca_file(ca_file)


# operation handles ----------------------------------------------------------------------------------


def check_after(after: int) -> int:
    """The sequence number ``events(after=...)`` starts after."""
    if after < 0:
        raise ValidationError("after must be 0 or a sequence number", field="after")
    return after


def check_wait_timeout(timeout: float | None) -> float | None:
    if timeout is not None and timeout < 0:
        raise ValidationError("timeout must be positive", field="timeout")
    return timeout


def check_ports(ports: Sequence[int]) -> None:
    """The ports an image listens on: port numbers (not a string of digits, not booleans)."""
    if isinstance(ports, (str, bytes)) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    ):
        raise ValidationError("ports must be a list of port numbers from 1 to 65535", field="ports")
