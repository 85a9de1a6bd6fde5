"""Boundary checks for what a caller gives us before anything is sent to Proxmox.

Pure functions: each returns the checked (normalised) value or raises
:class:`~proximity_sdk.errors.ValidationError` naming the field and what to do.
The patterns are PVE's own (pve-common ``JSONSchema.pm``, pve-access-control).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from proximity_sdk.errors import ValidationError

__all__ = [
    "check_ca_file",
    "check_node_name",
    "check_storage_id",
    "check_timeout",
    "check_token_id",
    "check_url",
    "check_userid",
    "check_vmid",
]

# pve-node: a host name label.
_NODE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$")
# pve-storage-id: at least two characters, case-insensitive.
_STORAGE = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
# pve-userid: name@realm (PVE::Auth::Plugin::$user_regex / $realm_regex).
_USERID = re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$")
# pve-tokenid: user@realm!name (PVE::AccessControl::$token_subid_regex).
_TOKENID = re.compile(r"^([^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]+)$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?)$")

VMID_MIN = 100
VMID_MAX = 999_999_999


def check_url(url: object, *, field: str = "url") -> str:
    """``https://host[:port]`` with nothing after the port; returns it without a trailing slash."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("the Proxmox URL is empty", field=field, hint="Give it as https://host:8006")
    text = url.strip()
    if "://" not in text:
        text = text.rstrip("/")
        raise ValidationError(
            f"the Proxmox URL {url!r} has no scheme",
            field=field,
            hint=f"Write it with the scheme, e.g. https://{text}" + ("" if ":" in text else ":8006"),
        )
    parts = urlsplit(text)
    if parts.path == "/":
        parts = parts._replace(path="")
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            f"the Proxmox URL {url!r} uses scheme {parts.scheme!r}",
            field=field,
            hint="The Proxmox API is served over https:// (port 8006)",
        )
    if parts.scheme != "https":
        raise ValidationError(
            f"the Proxmox URL {url!r} is plain http",
            field=field,
            hint="The Proxmox API only answers over TLS: use https:// (port 8006)",
        )
    host = parts.hostname or ""
    shown_host = f"[{host}]" if ":" in host else host
    if not host or not _HOST.match(shown_host):
        raise ValidationError(
            f"the Proxmox URL {url!r} has no valid host", field=field, hint="Give it as https://host:8006"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(
            f"the Proxmox URL {url!r} has an invalid port",
            field=field,
            hint="The port is a number from 1 to 65535 (Proxmox uses 8006)",
        ) from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(
            f"the Proxmox URL {url!r} has a path, query or credentials",
            field=field,
            hint="Give only scheme, host and port, e.g. https://pve1:8006 (credentials go in token_id/user)",
        )
    return f"https://{shown_host}" + (f":{port}" if port else "")


def check_userid(user: object, *, field: str = "user") -> str:
    """``name@realm`` as PVE spells a user, e.g. ``root@pam``."""
    if not isinstance(user, str) or not _USERID.match(user):
        raise ValidationError(
            f"user {user!r} is not a Proxmox user id",
            field=field,
            hint="Write it as name@realm, e.g. root@pam or admin@pve",
        )
    return user


def check_token_id(token_id: object, *, field: str = "token_id") -> tuple[str, str]:
    """``user@realm!tokenname``; returns ``(user@realm, tokenname)``."""
    match = _TOKENID.match(token_id) if isinstance(token_id, str) else None
    if match is None:
        raise ValidationError(
            f"token id {token_id!r} is not user@realm!tokenname",
            field=field,
            hint="Copy the full token id from Datacenter > Permissions > API Tokens, e.g. root@pam!proximity",
        )
    return match.group(1), match.group(2)


def check_ca_file(path: object, *, field: str = "ca_file") -> str:
    """A readable file (a PEM bundle) that exists now."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"{field} must be a path, not {type(path).__name__}", field=field)
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise ValidationError(
            f"CA file {text!r} does not exist",
            field=field,
            hint="Copy the cluster CA (/etc/pve/pve-root-ca.pem on a node) here, or give its real path",
        )
    if not os.access(text, os.R_OK):
        raise ValidationError(
            f"CA file {text!r} is not readable",
            field=field,
            hint="Fix its permissions so this process can read it",
        )
    return str(text)


def check_node_name(node: object, *, field: str = "node") -> str:
    """A Proxmox node name: letters, digits and inner dashes (a host name label)."""
    if not isinstance(node, str) or len(node) > 63 or not _NODE.match(node):
        raise ValidationError(
            f"node name {node!r} is not a valid Proxmox node name",
            field=field,
            hint="Node names are host name labels: letters, digits and inner '-', no spaces or dots",
        )
    return node


def check_vmid(vmid: object, *, field: str = "vmid") -> int:
    """An integer guest id from 100 to 999999999."""
    if isinstance(vmid, bool) or not isinstance(vmid, int):
        if isinstance(vmid, str) and vmid.isdigit():
            vmid = int(vmid)
        else:
            raise ValidationError(
                f"vmid {vmid!r} is not an integer",
                field=field,
                hint=f"Use a number from {VMID_MIN} to {VMID_MAX}",
            )
    assert isinstance(vmid, int)
    if not VMID_MIN <= vmid <= VMID_MAX:
        raise ValidationError(
            f"vmid {vmid} is out of range", field=field, hint=f"Use a number from {VMID_MIN} to {VMID_MAX}"
        )
    return vmid


def check_storage_id(storage: object, *, field: str = "storage") -> str:
    """A Proxmox storage id such as ``local`` or ``local-lvm``."""
    if not isinstance(storage, str) or not _STORAGE.match(storage):
        raise ValidationError(
            f"storage id {storage!r} is not a valid Proxmox storage id",
            field=field,
            hint="Storage ids start with a letter and hold letters, digits, '-', '_' or '.' (e.g. local-lvm)",
        )
    return storage


def check_timeout(timeout: object, *, field: str = "timeout") -> tuple[float, float]:
    """``(connect, read)`` seconds, both positive."""
    if (
        not isinstance(timeout, tuple)
        or len(timeout) != 2
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in timeout)
    ):
        raise ValidationError(
            f"timeout {timeout!r} is not (connect_seconds, read_seconds)",
            field=field,
            hint="Give two positive numbers, e.g. timeout=(5, 60)",
        )
    return float(timeout[0]), float(timeout[1])
