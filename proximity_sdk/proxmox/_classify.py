"""Turn every way a Proxmox request can fail into one error of the SDK's tree.

PVE answers domain errors with HTTP 500 and a message (``does not exist``, ``already
exists``, ``can't lock file ... got timeout``), so the status alone is not enough: the
message decides. The rules are kept in one ordered table so they are read top to bottom.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypedDict

import requests
from proxmoxer.core import AuthenticationError as ProxmoxerAuthError
from proxmoxer.core import ResourceException

from proximity_sdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    InvalidParameterError,
    LockedError,
    NotFoundError,
    PermissionDeniedError,
    ProximityError,
    ProxmoxError,
    RootRequiredError,
    TLSError,
    TransientError,
    UnavailableError,
    UnreachableError,
)

__all__ = ["classify_exception", "classify_response"]


class _Where(TypedDict, total=False):
    status: int
    method: str
    path: str


_ROOT_ONLY = re.compile(r"only root|only allowed for root|user != root@pam|root-only|requires root", re.IGNORECASE)
_LOCKED = re.compile(r"can't lock file|is locked|lock timeout|locked \(", re.IGNORECASE)
_NOT_FOUND = re.compile(
    r"does not exist|no such |not found|unable to parse worker upid|hostname lookup .* failed",
    re.IGNORECASE,
)
_EXISTS = re.compile(r"already exists|already taken", re.IGNORECASE)
_STATE = re.compile(r"already running|not running|is running", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"no route to host|connection refused|connection timed out|network is unreachable|"
    r"name or service not known|temporary failure in name resolution",
    re.IGNORECASE,
)
_GOT_TIMEOUT = re.compile(r"got timeout|timed out|timeout", re.IGNORECASE)
_NO_QUORUM = re.compile(r"no quorum|cluster not ready", re.IGNORECASE)


def classify_response(
    status: int,
    message: str,
    *,
    errors: Mapping[str, object] | None = None,
    method: str,
    path: str,
) -> ProximityError:
    """The SDK error for an HTTP error answer from Proxmox."""
    text = (message or "").strip() or f"HTTP {status}"
    fields = {str(k): str(v).strip() for k, v in (errors or {}).items()}
    everything = " ".join([text, *fields.values()])
    where: _Where = {"status": status, "method": method, "path": path}

    if status == 401:
        return AuthenticationError(f"Proxmox refused the credentials: {text}", **where)
    if _ROOT_ONLY.search(everything) and (status in (403, 500) or (status == 400 and fields)):
        return RootRequiredError(f"only root@pam may do this: {everything}", **where)
    if status == 403:
        return PermissionDeniedError(f"permission denied: {text}", **where)
    # The config flock first: its message also says "got timeout", which is not a transient fault.
    if _LOCKED.search(everything):
        return LockedError(f"the guest or storage is locked: {everything}", **where)
    if _EXISTS.search(everything):
        return AlreadyExistsError(f"already exists: {everything}", **where)
    if status == 404 or _NOT_FOUND.search(everything):
        return NotFoundError(f"not found: {everything}", **where)
    if status == 400:
        return InvalidParameterError(f"Proxmox refused the parameters: {text}", errors=fields, **where)
    if 595 <= status <= 599:
        if status == 595 and _UNREACHABLE.search(text):
            return UnreachableError(
                f"Proxmox could not reach the node: {text}",
                hint="The node is offline or cut off from the cluster; check it, or use another node",
                **where,
            )
        return TransientError(f"Proxmox proxy error: {text}", **where)
    if _NO_QUORUM.search(text):
        return UnavailableError(
            f"the cluster has no quorum: {text}",
            hint="Bring enough nodes back online for quorum; /etc/pve is read-only until then",
            **where,
        )
    if _STATE.search(everything):
        return ConflictError(
            f"the guest is not in the state this needs: {everything}",
            hint="Read the guest's current status and act on that",
            **where,
        )
    if status in (502, 503, 504) or (status >= 500 and _GOT_TIMEOUT.search(text)):
        return TransientError(f"Proxmox timed out or is busy: {text}", **where)
    if status == 501:
        return ProxmoxError(
            f"this Proxmox does not implement the call: {text}",
            hint="The call may need a newer Proxmox VE release",
            **where,
        )
    return ProxmoxError(text if not fields else everything, **where)


_TRANSIENT_CONNECTION = re.compile(
    r"reset by peer|remote ?disconnected|connection aborted|broken pipe|"
    r"protocolerror|incompleteread|connection closed",
    re.IGNORECASE,
)


def classify_exception(exc: BaseException, *, method: str, path: str) -> ProximityError:
    """The SDK error for anything a request raised (proxmoxer, requests, sockets)."""
    if isinstance(exc, ProximityError):
        return exc
    where: _Where = {"method": method, "path": path}
    if isinstance(exc, ResourceException):
        errors = exc.errors if isinstance(exc.errors, Mapping) else None
        return classify_response(
            int(exc.status_code),
            str(exc.content or exc.status_message or ""),
            errors=errors,
            method=method,
            path=path,
        )
    if isinstance(exc, ProxmoxerAuthError):
        # proxmoxer folds every failed login into this; the status is in its text.
        found = re.search(r"code: (\d+)", str(exc))
        status = int(found.group(1)) if found else 401
        if status == 401:
            return AuthenticationError(
                "Proxmox refused the user name or password", status=401, method=method, path=path
            )
        return classify_response(status, str(exc), method=method, path=path)
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(f"the TLS certificate of Proxmox was not trusted: {_reason(exc)}", **where)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UnreachableError(f"connecting to Proxmox timed out: {_reason(exc)}", **where)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransientError(
            f"Proxmox did not answer in time: {_reason(exc)}",
            hint="Raise the read timeout if this call is slow by nature; reads are retried automatically",
            **where,
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return TransientError(f"the answer from Proxmox was cut off: {_reason(exc)}", **where)
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionError):
        text = _reason(exc)
        if _TRANSIENT_CONNECTION.search(text) and not _UNREACHABLE.search(text):
            return TransientError(f"the connection to Proxmox was lost: {text}", **where)
        return UnreachableError(f"cannot connect to Proxmox: {text}", **where)
    if isinstance(exc, requests.exceptions.RequestException):
        return ProxmoxError(f"the request to Proxmox failed: {_reason(exc)}", **where)
    return ProxmoxError(f"unexpected failure talking to Proxmox: {exc!r}", **where)


def _reason(exc: BaseException) -> str:
    """The innermost useful text of a requests/urllib3 exception chain."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if text and text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return " <- ".join(parts[:3]) if parts else type(exc).__name__
