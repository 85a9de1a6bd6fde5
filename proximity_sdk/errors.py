"""Every error Proximity raises, in one tree.

Catch the branch you can act on; each error's message says what happened and what to do.
Errors raised from a Proxmox answer also carry ``status``, ``method`` and ``path`` of the request.

::

    ProximityError
    ├── ValidationError (ValueError)         input refused before anything was sent
    │   └── InvalidParameterError            Proxmox refused parameters (400); .errors per field
    ├── NotFoundError                        no such app, host, container, node, task, ...
    ├── AlreadyExistsError                   the name or VMID is taken
    ├── ConflictError                        the target is busy
    │   ├── LockedError                      a Proxmox lock (config `lock`, "can't lock file ... got timeout")
    │   └── BusyError                        another operation runs on the same app
    ├── AuthenticationError                  wrong or expired credentials, unknown token
    ├── PermissionDeniedError                authenticated, but not allowed
    │   └── RootRequiredError                only root@pam may do this (keyctl, bind mounts, raw lxc keys)
    ├── UnavailableError                     the far side could not answer now; retrying may help
    │   ├── UnreachableError                 no connection (refused, reset, DNS, timeout, node offline)
    │   │   └── TLSError                     the certificate was not trusted; never silently downgraded
    │   └── TransientError                   5xx "got timeout", 595-599: retried for reads
    ├── TaskError                            a Proxmox task (UPID) did not succeed
    │   ├── TaskFailedError                  stopped with an error; .exitstatus, .log_tail
    │   └── TaskTimeoutError (TimeoutError)  still running when we stopped waiting (not cancelled)
    ├── NodeShellError                       the SSH shell on a node
    │   ├── HostKeyError                     unknown or changed host key: refused
    │   ├── CommandFailedError               non-zero exit; .exit_status, .stderr_tail
    │   └── CommandTimeoutError (TimeoutError)
    ├── SecretKeyError                       the secret key cannot decrypt what is stored
    ├── NotRecordedError                     Proximity kept no record of it (an OCI app's console log)
    ├── ProxmoxError                         any other answer from Proxmox we cannot classify
    └── OperationError                       an Operation did not deliver its result
        ├── OperationFailed                  .step, .log_tail
        ├── OperationTimeout (TimeoutError)  wait() gave up; the operation goes on
        └── OperationCancelled
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict, Unpack

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BusyError",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConflictError",
    "HostKeyError",
    "InvalidParameterError",
    "LockedError",
    "NodeShellError",
    "NotFoundError",
    "NotRecordedError",
    "OperationCancelled",
    "OperationError",
    "OperationFailed",
    "OperationTimeout",
    "PermissionDeniedError",
    "ProximityError",
    "ProxmoxError",
    "RootRequiredError",
    "SecretKeyError",
    "TLSError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransientError",
    "UnavailableError",
    "UnreachableError",
    "ValidationError",
]


class ErrorContext(TypedDict, total=False):
    """Keyword arguments every error accepts."""

    hint: str | None
    status: int | None
    method: str | None
    path: str | None


class ProximityError(Exception):
    """Base of every Proximity error.

    ``hint`` says what to do about it; ``status``/``method``/``path`` are set when the error
    comes from a Proxmox answer.
    """

    default_hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.status = status
        self.method = method
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.method and self.path:
            where = f"{self.method} {self.path}"
            text = f"{text} ({where}" + (f" -> HTTP {self.status})" if self.status else ")")
        if self.hint:
            text = f"{text}. {self.hint}"
        return text


class ValidationError(ProximityError, ValueError):
    """Input refused at the boundary, before any side effect. ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None, **kw: Unpack[ErrorContext]) -> None:
        self.field = field
        super().__init__(message, **kw)


class InvalidParameterError(ValidationError):
    """Proxmox refused the request's parameters (HTTP 400); ``errors`` maps parameter -> message."""

    default_hint = "Fix the named parameters; the Proxmox API schema for this path lists what is accepted"

    def __init__(self, message: str, *, errors: Mapping[str, str] | None = None, **kw: Unpack[ErrorContext]) -> None:
        self.errors: dict[str, str] = dict(errors or {})
        if self.errors:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
            message = f"{message} [{detail}]"
        field = next(iter(sorted(self.errors)), None)
        super().__init__(message, field=field, **kw)


class NotFoundError(ProximityError):
    """The thing asked for does not exist."""

    default_hint = "Check the name or id; list what exists first"


class AlreadyExistsError(ProximityError):
    """The name or id is already taken."""

    default_hint = "Choose another name or id, or remove the existing one first"


class ConflictError(ProximityError):
    """The target is busy with something else."""

    default_hint = "Wait for the other action to finish, then retry"


class LockedError(ConflictError):
    """A Proxmox lock is held on the guest or storage."""

    default_hint = (
        "Another task holds the lock; wait for it to finish (see the node's task list) and retry. "
        "A stale lock can be removed with `pct unlock <vmid>` on the node"
    )


class BusyError(ConflictError):
    """Another Proximity operation is running on the same app or VMID."""

    default_hint = "Wait for the running operation (px.operations.get) to finish, or cancel it"


class AuthenticationError(ProximityError):
    """The credentials were refused or have expired."""

    default_hint = "Check the user, token id and secret (or password); an API token may have been revoked"


class PermissionDeniedError(ProximityError):
    """Authenticated, but not allowed to do this."""

    default_hint = "Grant the missing privilege to the user or token (Datacenter > Permissions), or use one that has it"


class RootRequiredError(PermissionDeniedError):
    """Only root@pam may do this on Proxmox, even with an Administrator token."""

    default_hint = (
        "Proxmox reserves this to root@pam: log in as root@pam with a password (ticket), "
        "or do it through the node shell (SSH)"
    )


class UnavailableError(ProximityError):
    """The far side could not answer now; retrying later may work."""

    default_hint = "Retry later; check that the host and its services are up"


class UnreachableError(UnavailableError):
    """No connection could be made or it was lost."""

    default_hint = "Check the URL, the network path and that pveproxy runs on the host (port 8006)"


class TLSError(UnreachableError):
    """The server's certificate was not trusted. Proximity never downgrades to no verification."""

    default_hint = (
        "Give the CA that signed the host's certificate (ca_file=, e.g. /etc/pve/pve-root-ca.pem "
        "copied from the node), or deliberately set verify_tls=False"
    )


class TransientError(UnavailableError):
    """A fault that usually passes: 5xx "got timeout", 595-599, connection resets."""

    default_hint = "Retry in a moment; reads are already retried automatically"


class TaskError(ProximityError):
    """A Proxmox task did not succeed. ``upid`` names it."""

    def __init__(self, message: str, *, upid: str, **kw: Unpack[ErrorContext]) -> None:
        self.upid = upid
        super().__init__(message, **kw)


class TaskFailedError(TaskError):
    """A task stopped with an error; ``exitstatus`` and the last lines of its log are kept."""

    default_hint = "Read the task log on the node (the tail is above) for the cause"

    def __init__(
        self, message: str, *, upid: str, exitstatus: str, log_tail: Sequence[str] = (), **kw: Unpack[ErrorContext]
    ) -> None:
        self.exitstatus = exitstatus
        self.log_tail: list[str] = list(log_tail)
        if self.log_tail:
            message = message + "\n  " + "\n  ".join(self.log_tail)
        super().__init__(message, upid=upid, **kw)


class TaskTimeoutError(TaskError, TimeoutError):
    """We stopped waiting for a task; the task itself goes on (it was not cancelled)."""

    default_hint = "Wait again with a longer timeout, or cancel the task explicitly"


class NodeShellError(ProximityError):
    """The SSH shell on a Proxmox node failed."""

    default_hint = "Check SSH access to the node (user, key, address) as configured for the host"


class HostKeyError(NodeShellError):
    """The node's SSH host key is unknown or changed; the connection was refused."""

    default_hint = (
        "Add the node's key to the known_hosts file given in SshAccess (ssh-keyscan, checked out of band), "
        "or set trust_on_first_use=True to pin it on first contact"
    )


class CommandFailedError(NodeShellError):
    """A command on the node exited non-zero."""

    default_hint = "The end of its error output is above"

    def __init__(self, message: str, *, exit_status: int, stderr_tail: str = "", **kw: Unpack[ErrorContext]) -> None:
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail
        if stderr_tail:
            message = f"{message} (exit {exit_status}):\n{stderr_tail}"
        else:
            message = f"{message} (exit {exit_status})"
        super().__init__(message, **kw)


class CommandTimeoutError(NodeShellError, TimeoutError):
    """A command on the node did not finish in time; it was stopped (the channel closed)."""

    default_hint = "Raise the timeout, or look on the node for what hangs"


class SecretKeyError(ProximityError):
    """The secret key cannot decrypt what is stored (a wrong key, or a corrupt value)."""

    default_hint = (
        "Use the key the data was written with (PROXIMITY_SECRET_KEY or the key file); "
        "rotate keys with px.settings.rotate_secret_key, never by replacing the file"
    )


class NotRecordedError(ProximityError):
    """What was asked for was never recorded for this app (e.g. the console log of a native OCI app
    deployed without a node shell, or before Proximity recorded console logs)."""

    default_hint = "Redeploy the app to have it recorded"


class ProxmoxError(ProximityError):
    """An answer from Proxmox that fits no other branch."""

    default_hint = "See the message from Proxmox above"


class OperationError(ProximityError):
    """An Operation did not deliver its result."""

    def __init__(self, message: str, *, operation_id: str, **kw: Unpack[ErrorContext]) -> None:
        self.operation_id = operation_id
        super().__init__(message, **kw)


class OperationFailed(OperationError):
    """The operation failed at ``step``; what it created was rolled back. ``log_tail`` from Proxmox."""

    def __init__(
        self,
        message: str,
        *,
        operation_id: str,
        step: str | None,
        log_tail: Sequence[str] = (),
        **kw: Unpack[ErrorContext],
    ) -> None:
        self.step = step
        self.log_tail: list[str] = list(log_tail)
        if step:
            message = f"{message} (step {step})"
        if self.log_tail:
            message = message + "\n  " + "\n  ".join(self.log_tail)
        super().__init__(message, operation_id=operation_id, **kw)


class OperationTimeout(OperationError, TimeoutError):
    """wait() gave up; the operation goes on. Wait again or cancel it."""

    default_hint = "The operation is still running: call op.wait() again, or op.cancel()"


class OperationCancelled(OperationError):
    """The operation was cancelled; what it had created was rolled back."""
