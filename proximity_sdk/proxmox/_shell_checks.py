"""Input checks and command-line building for the node shell (private to ``shell.py``).

Everything here runs before anything is sent: a refused value raises ValidationError naming the
field, and never echoes an environment value (it may be a secret).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from proximity_sdk.errors import ValidationError

__all__ = [
    "bounded",
    "check_argv",
    "check_command_timeout",
    "check_container_path",
    "check_node",
    "check_text",
    "check_vmid_int",
    "compose_script",
]

_NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {type(value).__name__}", field=field)
    if "\x00" in value:
        raise ValidationError(
            f"{field} contains a NUL byte, which cannot be passed to a command",
            field=field,
            hint="Remove the NUL byte, or send binary data as a file (pct_push)",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} is not valid Unicode text (lone surrogate)", field=field) from None
    return value


def check_node(node: object) -> str:
    if not isinstance(node, str) or not _NODE_NAME.match(node):
        raise ValidationError(
            f"node name {node!r} is not a valid Proxmox node name",
            field="node",
            hint="Use the node's name as Proxmox lists it (letters, digits and '-')",
        )
    return node


def check_vmid_int(vmid: object) -> int:
    if isinstance(vmid, bool) or not isinstance(vmid, int) or not 100 <= vmid <= 999_999_999:
        raise ValidationError(f"VMID {vmid!r} is not a container id (an integer from 100 to 999999999)", field="vmid")
    return vmid


def check_command_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValidationError(f"timeout must be a positive number of seconds, not {timeout!r}", field="timeout")
    return float(timeout)


def check_container_path(path: object, field: str) -> str:
    text = check_text(path, field)
    parts = text.split("/")
    if not text.startswith("/") or len(text) > 4096 or text.endswith("/") or "\n" in text:
        raise ValidationError(
            f"{field} {text!r} must be an absolute file path inside the container, without a trailing '/'",
            field=field,
        )
    if any(part in (".", "..") for part in parts[1:]) or "" in parts[1:]:
        raise ValidationError(f"{field} {text!r} must be a normalized path (no '.', '..' or '//')", field=field)
    return text


def check_argv(argv: object) -> list[str]:
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence) or not argv:
        raise ValidationError(
            "argv must be a non-empty sequence of strings (one per argument), not a command line",
            field="argv",
        )
    return [check_text(arg, "argv") for arg in argv]


def bounded(argv: Sequence[str], timeout: float) -> str:
    """The command line for ``argv``, ended on the node by coreutils `timeout` just after ours.

    Closing an SSH channel does not stop a command (OpenSSH's "signal" request is refused for
    root logins), so the node enforces the limit too: SIGTERM to the command's process group
    one second after we give up, SIGKILL 5 s later.
    """
    return shlex.join(["timeout", "-k", "5", f"{timeout + 1:.3f}", *argv])


def compose_script(script: str, env: Mapping[str, str] | None) -> str:
    """The inner script with ``env`` exported first, every value quoted."""
    check_text(script, "script")
    exports: list[str] = []
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValidationError(
                f"environment variable name {name!r} is not valid (letters, digits, '_'; no leading digit)",
                field="env",
            )
        # Only the name may appear in the error: the value may be a secret.
        if not isinstance(value, str) or "\x00" in value:
            raise ValidationError(
                f"the value of environment variable {name} must be a string without NUL bytes", field="env"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"the value of environment variable {name} is not valid Unicode text", field="env"
            ) from None
        exports.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(exports) + script
