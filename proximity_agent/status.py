"""Exceptions -> gRPC status codes, in one place. Nothing reaches a client as UNKNOWN.

How the SDK's tree (``proximity_sdk.errors``) maps, and why:

===========================================  ======================  ==========================================
exception                                    code                    why
===========================================  ======================  ==========================================
ValidationError, InvalidParameterError       INVALID_ARGUMENT        the request itself is wrong
NotFoundError                                NOT_FOUND
AlreadyExistsError                           ALREADY_EXISTS
CallerOverQuota                              RESOURCE_EXHAUSTED      the caller holds its quota of long calls
BusyError, LockedError                       ABORTED                 a concurrent action holds the target;
                                                                     the same request later may succeed
ConflictError (plain)                        FAILED_PRECONDITION     a state conflict ("host still has apps",
                                                                     "app is deploying", "node offline"):
                                                                     the client must change state first
CallerNotAuthenticated                       UNAUTHENTICATED         the caller's bearer token (auth.py)
CallerNotAllowed                             PERMISSION_DENIED       the caller's role (auth.py)
AuthenticationError, PermissionDeniedError   FAILED_PRECONDITION     raised by the SDK, these are Proxmox
                                                                     refusing a *host's* stored credentials:
                                                                     the caller's token is fine, the host
                                                                     must be fixed (UNAUTHENTICATED would
                                                                     make clients drop a good token)
UnavailableError (Unreachable, TLS, Trans.)  UNAVAILABLE             retrying later may work
TaskTimeoutError, CommandTimeoutError,       DEADLINE_EXCEEDED
OperationTimeout
TaskFailedError, CommandFailedError,         FAILED_PRECONDITION     Proxmox or the node refused the work in
HostKeyError, OperationFailed                                        its current state
NotRecordedError                             FAILED_PRECONDITION     nothing was recorded to answer with (an
                                                                     OCI app's console without node shell)
OperationCancelled                           CANCELLED
any other ProximityError (ProxmoxError,      INTERNAL                with its message (SDK messages are
SecretKeyError, ...)                                                 written for users and carry no secrets)
anything else                                INTERNAL                a generic message with a reference; the
                                                                     traceback is logged here, never sent
===========================================  ======================  ==========================================

Every mapped error also travels as trailing metadata, so a remote client can raise the SDK's
own class again: ``proximity-error-kind`` (the class name), ``proximity-error-field`` (a
ValidationError's field) and ``proximity-error-hint``; the keys and their encoding live in
``proximity_sdk/_wire/errors.py``, shared with the remote client.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc

from proximity_sdk import errors
from proximity_sdk._wire.errors import INTERNAL_ERROR_KIND, WireError, error_to_metadata

__all__ = [
    "CallerNotAllowed",
    "CallerNotAuthenticated",
    "CallerOverQuota",
    "RpcFailure",
    "to_failure",
]

log = logging.getLogger("proximity_agent.rpc")


class CallerNotAuthenticated(errors.AuthenticationError):
    """The call carries no bearer token, or one that is unknown, revoked, expired or disabled."""

    default_hint = "Send `authorization: Bearer <token>`; create a token with `proximity-agent token create`"


class CallerNotAllowed(errors.PermissionDeniedError):
    """The caller is authenticated, but its role does not allow this call."""

    default_hint = "Ask an admin to do it, or to make you an admin"


class CallerOverQuota(errors.BusyError):
    """The caller already holds as many long calls as one user may (servicers/_base.py)."""


@dataclass(frozen=True)
class RpcFailure:
    """What to send back: code, details and trailing metadata."""

    code: grpc.StatusCode
    details: str
    metadata: tuple[tuple[str, str], ...]


# checked in order: the first matching class decides (subclasses before their bases)
_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (CallerNotAuthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (CallerNotAllowed, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (CallerOverQuota, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.BusyError, grpc.StatusCode.ABORTED),
    (errors.LockedError, grpc.StatusCode.ABORTED),
    (errors.ConflictError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AuthenticationError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDeniedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.TaskTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.CommandTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.OperationTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.OperationCancelled, grpc.StatusCode.CANCELLED),
    (errors.TaskFailedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.CommandFailedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.HostKeyError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.OperationFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotRecordedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NodeShellError, grpc.StatusCode.UNAVAILABLE),
    (errors.ProximityError, grpc.StatusCode.INTERNAL),
)

_PREFIX = {
    # the SDK's own wording is about Proxmox; say so, so nobody thinks their bearer token is meant
    errors.AuthenticationError: "the Proxmox host refused its stored credentials: ",
    errors.PermissionDeniedError: "the Proxmox host refused: ",
}


def code_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def to_failure(exc: BaseException, *, method: str = "") -> RpcFailure:
    """The status to answer ``exc`` with. Unexpected exceptions are logged with a reference
    that the client sees instead of any detail."""
    if not isinstance(exc, errors.ProximityError):
        reference = uuid.uuid4().hex[:12]
        log.error("internal error in %s (reference %s)", method or "an RPC", reference, exc_info=exc)
        return RpcFailure(
            grpc.StatusCode.INTERNAL,
            f"internal error (reference {reference}); the agent's log has the details",
            error_to_metadata(WireError(kind=INTERNAL_ERROR_KIND)),
        )
    code = code_for(exc)
    details = str(exc)
    if code == grpc.StatusCode.FAILED_PRECONDITION and not isinstance(exc, CallerNotAllowed):
        for cls, prefix in _PREFIX.items():
            if isinstance(exc, cls):
                details = prefix + details
                break
    field = getattr(exc, "field", None)
    metadata = error_to_metadata(
        WireError(kind=type(exc).__name__, field=field if isinstance(field, str) else None, hint=exc.hint or None)
    )
    if code == grpc.StatusCode.INTERNAL:
        log.warning("%s failed: %s", method or "an RPC", details)
    return RpcFailure(code, details, metadata)
