"""A failed call -> the SDK's own exception, as the agent raised it.

The agent sends the class name in the trailing metadata ``proximity-error-kind`` (with
``-field`` and ``-hint``; both ends encode it with ``proximity_sdk/_wire/errors.py``); its
message is the status details.
The same class is raised here with the same text, so ``except NotFoundError`` and ``exc.field``
work as with ``Proximity.local()``. Failures without that metadata come from the transport.
"""

from __future__ import annotations

from typing import Any

import grpc

from proximity_sdk import errors
from proximity_sdk._wire.errors import error_class, error_from_metadata

__all__ = ["error_kind", "from_rpc_error"]

# what the attributes of classes with extra constructor arguments are when the wire does not carry them
_DEFAULTS: dict[str, Any] = {
    "field": None,
    "errors": {},
    "upid": "",
    "exitstatus": "",
    "log_tail": [],
    "exit_status": -1,
    "stderr_tail": "",
    "operation_id": "",
    "step": None,
}


def _trailing(exc: grpc.RpcError) -> dict[str, str]:
    metadata = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    found: dict[str, str] = {}
    for item in metadata or ():
        value = item.value
        if isinstance(value, str):  # binary values (keys ending in -bin) are not ours
            found[str(item.key)] = value
    return found


def error_kind(exc: grpc.RpcError) -> str | None:
    """The SDK class name the agent sent, None for a transport failure."""
    sent = error_from_metadata(_trailing(exc))
    return sent.kind if sent is not None else None


def _rebuilt(
    cls: type[errors.ProximityError], details: str, *, hint: str | None, field: str | None
) -> errors.ProximityError:
    """An instance of ``cls`` whose text is exactly the agent's (constructors that add to the
    message, e.g. CommandFailedError's exit status, already did so on the agent)."""
    exc = cls.__new__(cls)
    for name, value in _DEFAULTS.items():
        setattr(exc, name, value.copy() if isinstance(value, dict | list) else value)
    exc.field = field  # type: ignore[attr-defined]  # every class gets it; ValidationError's is read
    exc.hint = hint or ""
    suffix = f". {hint}" if hint else ""
    exc.message = details[: -len(suffix)] if suffix and details.endswith(suffix) else details
    exc.status = exc.method = exc.path = None
    Exception.__init__(exc, details)
    return exc


def from_rpc_error(exc: grpc.RpcError, *, target: str) -> errors.ProximityError:
    code: grpc.StatusCode = exc.code()
    details: str = exc.details() or code.name
    sent = error_from_metadata(_trailing(exc))
    if sent is not None:
        return _rebuilt(error_class(sent.kind), details, hint=sent.hint, field=sent.field)
    return _transport(code, details, target)


def _transport(code: grpc.StatusCode, details: str, target: str) -> errors.ProximityError:
    lowered = details.lower()
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(word in lowered for word in ("ssl", "tls", "handshake", "certificate")):
            return errors.TLSError(
                f"TLS with the agent at {target} failed: {details}",
                hint="Give the CA that signed the agent's certificate (ca_file=), and a client certificate "
                "(cert_file=, key_file=) if the agent asks for one",
            )
        return errors.UnreachableError(
            f"cannot reach the agent at {target}: {details}",
            hint="Check the address and that `proximity-agent serve` runs there",
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.UnavailableError(
            f"the agent at {target} did not answer in time: {details}", hint="Retry, or connect with a larger timeout="
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return errors.AuthenticationError(
            f"the agent at {target} refused the token: {details}", hint="Check the token given to Proximity.connect"
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.PermissionDeniedError(f"the agent at {target} refused: {details}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return errors.ProximityError(
            f"the agent at {target} does not offer this call: {details}", hint="Upgrade the agent to this SDK's version"
        )
    return errors.ProximityError(f"the call to the agent at {target} failed ({code.name}): {details}")
