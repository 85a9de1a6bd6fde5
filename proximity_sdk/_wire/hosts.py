"""``hosts.proto``: hosts, nodes, host checks and storages (answers, both directions), and the
host specs and SSH access of HostService's requests.

Files named in the client's arguments (an SSH key, known_hosts) are read by :func:`ssh_to_pb` on
the client's machine and their *contents* sent; :func:`ssh_from_pb` refuses a path, which would
make the agent read a file on its own machine. A host's private key never goes into an answer.
The SSH helpers (and paramiko with them) are imported in the functions that use them: a client
listing hosts through an agent loads no node shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
from google.protobuf.field_mask_pb2 import FieldMask

from proximity_sdk._pb.proximity.v1 import hosts_pb2
from proximity_sdk._wire._base import (
    enum_to_pb,
    invalid_field,
    known_enum_from_pb,
    mask_paths_from_pb,
    optional_from_pb,
    required_timestamp_from_pb,
    timestamp_from_pb,
    timestamp_to_pb,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.host import Host, Node
from proximity_sdk.models.host_check import HostCheck, PrivilegeGap
from proximity_sdk.models.proxmox import StorageStatus
from proximity_sdk.models.ssh import SshAccess, looks_like_key_text, looks_like_known_hosts_text

__all__ = [
    "host_check_from_pb",
    "host_check_to_pb",
    "host_from_pb",
    "host_spec_from_pb",
    "host_spec_to_pb",
    "host_to_pb",
    "host_update_from_pb",
    "host_update_to_pb",
    "node_from_pb",
    "node_to_pb",
    "ssh_from_pb",
    "ssh_to_pb",
    "storage_from_pb",
    "storage_to_pb",
]


# -- hosts (answers) -----------------------------------------------------------------------------


def host_to_pb(host: Host) -> hosts_pb2.Host:
    """Without the private key; known_hosts only when it holds lines, not a path on the agent."""
    ssh = None
    if host.ssh is not None:
        ssh = hosts_pb2.HostSshAccess(
            user=host.ssh.user,
            port=host.ssh.port,
            private_key_set=host.ssh.key_file is not None,
            known_hosts=host.ssh.known_hosts
            if host.ssh.known_hosts and looks_like_known_hosts_text(host.ssh.known_hosts)
            else None,
            trust_on_first_use=host.ssh.trust_on_first_use,
            addresses=dict(host.ssh.addresses),
            connect_timeout_seconds=host.ssh.connect_timeout,
        )
    return hosts_pb2.Host(
        id=host.id,
        name=host.name,
        url=host.url,
        auth=enum_to_pb("HOST_AUTH_", hosts_pb2.HostAuth, host.auth),
        token_id=host.token_id,
        user=host.user,
        verify_tls=host.verify_tls,
        ca_pem=host.ca_pem,
        ssh=ssh,
        is_default=host.is_default,
        created_at=timestamp_to_pb(host.created_at),
        updated_at=timestamp_to_pb(host.updated_at),
    )


def host_from_pb(m: hosts_pb2.Host) -> Host:
    ssh = None
    if m.HasField("ssh"):
        # the key never leaves the agent (and a path there means nothing here): key_file is None
        ssh = SshAccess(
            user=m.ssh.user or "root",
            port=m.ssh.port or 22,
            known_hosts=optional_from_pb(m.ssh, "known_hosts"),
            trust_on_first_use=m.ssh.trust_on_first_use,
            addresses=dict(m.ssh.addresses),
            connect_timeout=m.ssh.connect_timeout_seconds or 10.0,
        )
    auth = known_enum_from_pb("HOST_AUTH_", hosts_pb2.HostAuth, m.auth, known=("token", "password"), default="token")
    return Host(
        id=m.id,
        name=m.name,
        url=m.url,
        auth=auth,
        token_id=optional_from_pb(m, "token_id"),
        user=optional_from_pb(m, "user"),
        verify_tls=m.verify_tls,
        ca_pem=optional_from_pb(m, "ca_pem"),
        ssh=ssh,
        is_default=m.is_default,
        created_at=required_timestamp_from_pb(m, "created_at"),
        updated_at=required_timestamp_from_pb(m, "updated_at"),
    )


# -- SSH access and host specs (requests) --------------------------------------------------------


def _read_text(path: str, field: str) -> str:
    where = Path(path).expanduser()
    try:
        return where.read_text()
    except FileNotFoundError:
        raise ValidationError(f"{field}: {str(where)!r} does not exist", field=field) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field}: {str(where)!r} cannot be read: {exc}", field=field) from None


def ssh_to_pb(ssh: SshAccess, *, field: str = "ssh") -> hosts_pb2.SshAccess:
    """SSH access as the agent takes it: the key file and known_hosts file are read here."""
    if not isinstance(ssh, SshAccess):
        raise ValidationError("ssh must be an SshAccess(...)", field=field)
    key = ssh.key_file
    if key is not None and not looks_like_key_text(key):
        key = _read_text(key, f"{field}.key_file")
    known = ssh.known_hosts
    if known is not None and not looks_like_known_hosts_text(known):
        if Path(known).expanduser().exists() or not ssh.trust_on_first_use:
            known = _read_text(known, f"{field}.known_hosts")
        else:
            known = None  # a known_hosts file to be written by trust on first use: the agent keeps its own
    return hosts_pb2.SshAccess(
        user=ssh.user,
        port=ssh.port,
        private_key=key,
        known_hosts=known or None,
        trust_on_first_use=ssh.trust_on_first_use,
        addresses=dict(ssh.addresses),
        connect_timeout_seconds=ssh.connect_timeout,
    )


def ssh_from_pb(message: hosts_pb2.SshAccess, *, field: str = "ssh") -> SshAccess:
    """SSH access as sent: key and known_hosts are *contents*. A path would name a file on the
    agent's machine, which a remote caller must never make the agent read."""
    key = optional_from_pb(message, "private_key")
    if key is not None and not looks_like_key_text(key):
        raise ValidationError(
            "private_key must be the key's text (-----BEGIN ...), not a path: the client "
            "reads the file and sends its content",
            field=f"{field}.private_key",
        )
    known = optional_from_pb(message, "known_hosts")
    if known is not None and known.strip() and not looks_like_known_hosts_text(known):
        raise ValidationError(
            "known_hosts must be known_hosts lines ('<host> <key type> <base64 key>'), not a path",
            field=f"{field}.known_hosts",
        )
    try:
        return SshAccess(
            user=message.user or "root",
            port=message.port or 22,
            key_file=key,
            known_hosts=known or None,
            trust_on_first_use=message.trust_on_first_use,
            addresses=dict(message.addresses),
            connect_timeout=message.connect_timeout_seconds or 10.0,
        )
    except pydantic.ValidationError as exc:
        raise invalid_field(exc, field=field) from None


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


_HOST_FIELDS = ("name", "url", "token_id", "token_secret", "user", "password", "verify_tls", "ca_pem", "ssh")
_HOST_CLEARABLE = {"ca_pem", "ssh"}


def host_spec_to_pb(fields: Mapping[str, Any]) -> hosts_pb2.HostSpec:
    """A HostSpec with the given fields (``ssh`` an SshAccess, secrets as text or SecretStr);
    fields that are None are left unset."""
    unknown = sorted(set(fields) - set(_HOST_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown host field(s) {', '.join(unknown)}; known: {', '.join(_HOST_FIELDS)}", field=unknown[0]
        )
    spec = hosts_pb2.HostSpec()
    for name, value in fields.items():
        if value is None:
            continue
        if name == "ssh":
            spec.ssh.CopyFrom(ssh_to_pb(value))
        elif name in {"token_secret", "password"}:
            setattr(spec, name, _secret(value))
        elif name == "verify_tls":
            if not isinstance(value, bool):
                raise ValidationError("verify_tls must be True or False", field="verify_tls")
            spec.verify_tls = value
        else:
            if not isinstance(value, str):
                raise ValidationError(f"{name} must be text", field=name)
            setattr(spec, name, value)
    return spec


def host_spec_from_pb(spec: hosts_pb2.HostSpec) -> dict[str, Any]:
    """Keyword arguments of ``px.hosts.add`` (name first) from a HostSpec."""
    return dict(
        name=spec.name,
        url=spec.url,
        token_id=optional_from_pb(spec, "token_id"),
        token_secret=optional_from_pb(spec, "token_secret"),
        user=optional_from_pb(spec, "user"),
        password=optional_from_pb(spec, "password"),
        verify_tls=spec.verify_tls if spec.HasField("verify_tls") else True,
        ca_pem=optional_from_pb(spec, "ca_pem"),
        ssh=ssh_from_pb(spec.ssh, field="spec.ssh") if spec.HasField("ssh") else None,
    )


def host_update_to_pb(fields: Mapping[str, Any]) -> tuple[hosts_pb2.HostSpec, list[str]]:
    """The HostSpec and the update mask's paths for ``px.hosts.update(**fields)``: every field
    named is changed, a None clears it."""
    return host_spec_to_pb(fields), list(fields)


def host_update_from_pb(spec: hosts_pb2.HostSpec, mask: FieldMask) -> dict[str, Any]:
    """Keyword arguments of ``px.hosts.update`` for the fields named in the mask."""
    fields: dict[str, Any] = {}
    for path in mask_paths_from_pb(mask, _HOST_FIELDS, what="host"):
        if path in {"name", "url"}:
            if not getattr(spec, path):
                raise ValidationError(f"spec.{path} is named in update_mask but empty", field=f"spec.{path}")
            fields[path] = getattr(spec, path)
        elif path == "ssh":
            fields["ssh"] = ssh_from_pb(spec.ssh, field="spec.ssh") if spec.HasField("ssh") else None
        elif spec.HasField(path):  # type: ignore[arg-type]  # one of the optional fields
            fields[path] = getattr(spec, path)
        elif path in _HOST_CLEARABLE:
            fields[path] = None
        else:
            raise ValidationError(f"spec.{path} is named in update_mask but not set", field=f"spec.{path}")
    return fields


# -- nodes, checks, storages (answers) -----------------------------------------------------------


def node_to_pb(node: Node) -> hosts_pb2.Node:
    return hosts_pb2.Node(
        host_id=node.host_id,
        name=node.name,
        status=node.status,
        cpus=node.cpus,
        maxmem=node.maxmem,
        mem=node.mem,
        maxdisk=node.maxdisk,
        disk=node.disk,
        pve_version=node.pve_version,
        last_seen_at=timestamp_to_pb(node.last_seen_at),
    )


def node_from_pb(m: hosts_pb2.Node) -> Node:
    return Node(
        host_id=m.host_id,
        name=m.name,
        status=m.status or "unknown",
        cpus=optional_from_pb(m, "cpus"),
        maxmem=optional_from_pb(m, "maxmem"),
        mem=optional_from_pb(m, "mem"),
        maxdisk=optional_from_pb(m, "maxdisk"),
        disk=optional_from_pb(m, "disk"),
        pve_version=optional_from_pb(m, "pve_version"),
        last_seen_at=timestamp_from_pb(m, "last_seen_at"),
    )


def host_check_to_pb(check: HostCheck) -> hosts_pb2.HostCheck:
    return hosts_pb2.HostCheck(
        host_id=check.host_id,
        name=check.name,
        ok=check.ok,
        version=check.version,
        nodes=list(check.nodes),
        online_nodes=list(check.online_nodes),
        elapsed_ms=check.elapsed_ms,
        requests=check.requests,
        error=check.error,
        error_kind=check.error_kind,
        missing_privileges=[
            hosts_pb2.PrivilegeGap(privilege=g.privilege, path=g.path, used_for=g.used_for)
            for g in check.missing_privileges
        ],
    )


def host_check_from_pb(m: hosts_pb2.HostCheck) -> HostCheck:
    return HostCheck(
        host_id=m.host_id,
        name=m.name,
        ok=m.ok,
        version=optional_from_pb(m, "version"),
        nodes=list(m.nodes),
        online_nodes=list(m.online_nodes),
        elapsed_ms=m.elapsed_ms,
        requests=m.requests,
        error=optional_from_pb(m, "error"),
        error_kind=optional_from_pb(m, "error_kind"),
        missing_privileges=[
            PrivilegeGap(privilege=g.privilege, path=g.path, used_for=g.used_for) for g in m.missing_privileges
        ],
    )


def storage_to_pb(storage: StorageStatus) -> hosts_pb2.Storage:
    return hosts_pb2.Storage(
        storage=storage.storage,
        type=storage.type,
        content=storage.content_types,
        active=storage.active,
        enabled=storage.enabled,
        shared=storage.shared,
        total=storage.total,
        used=storage.used,
        avail=storage.avail,
    )


def storage_from_pb(m: hosts_pb2.Storage) -> StorageStatus:
    return StorageStatus.model_validate(
        {
            "storage": m.storage,
            "type": m.type,
            "content": ",".join(m.content),
            "active": m.active,
            "enabled": m.enabled,
            "shared": m.shared,
            "total": optional_from_pb(m, "total"),
            "used": optional_from_pb(m, "used"),
            "avail": optional_from_pb(m, "avail"),
        }
    )
