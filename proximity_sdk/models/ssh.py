"""How to reach the nodes of a host over SSH (the node shell)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proximity_sdk.models._html import HtmlRepr

__all__ = ["SshAccess", "SshHostKey", "looks_like_key_text", "looks_like_known_hosts_text"]

# the key types of OpenSSH public keys (the second field of a known_hosts line)
_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")

_NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:_\[\]-]{1,253}$")


class SshAccess(HtmlRepr, BaseModel):
    """SSH access to a host's nodes: key auth, known-hosts checking on by default.

    ``addresses`` maps a node name to the address to SSH to (default: the node name itself).
    ``key_file``/``known_hosts`` are paths on the machine that runs the SDK, or their contents (a
    key given as contents is stored encrypted).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(default="root", min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_.-]*$")
    port: int = Field(default=22, ge=1, le=65535)
    # a path, or the key itself (the remote SDK sends contents): never shown in repr
    key_file: str | None = Field(default=None, repr=False)
    known_hosts: str | None = None
    trust_on_first_use: bool = False
    addresses: dict[str, str] = Field(default_factory=dict)
    connect_timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("addresses")
    @classmethod
    def _check_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for node, address in value.items():
            if not _NODE_NAME.match(node):
                raise ValueError(f"node name {node!r} is not a valid Proxmox node name")
            if not _ADDRESS.match(address):
                raise ValueError(f"address {address!r} for node {node!r} is not a host name or IP address")
        return value

    def address_of(self, node: str) -> str:
        """The address to SSH to for ``node``."""
        return self.addresses.get(node, node)


class SshHostKey(HtmlRepr, BaseModel):
    """An SSH host key pinned for a node's address (``px.hosts.host_keys``, ``accept_host_key``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostname: str  # the address, or "[address]:port" off port 22
    key_type: str
    fingerprint: str
    pinned_at: datetime


def looks_like_key_text(value: str) -> bool:
    """Whether ``value`` holds a private key itself rather than a path to one."""
    return value.lstrip().startswith("-----BEGIN ")


def looks_like_known_hosts_text(value: str) -> bool:
    """Whether ``value`` is known_hosts content rather than a path (content has a key type field)."""
    if "\n" in value.strip():
        return True
    fields = value.split()
    return len(fields) >= 3 and fields[1].startswith(_KEY_TYPE_PREFIXES)
