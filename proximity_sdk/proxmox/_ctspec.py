"""What a new container is (:class:`ContainerSpec`) and the ``POST /nodes/{node}/lxc`` parameters for it.

Everything is checked here, before anything reaches Proxmox, against the same rules PVE's
schema applies (``dns-name``, ``pve-tag-list``, ``pve-storage-id``, the ``net[n]`` property
string), so a bad value is a :class:`ValidationError` naming the field, not a 400 from the node.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Self

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from proximity_sdk.errors import ValidationError
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings

__all__ = ["ContainerSpec", "NetworkSpec", "check_hostname", "create_params", "spec_from_settings"]

# RFC 1123 host name label: what an app's hostname is (it is also its DNS name on the LAN).
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_STORAGE = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
_BRIDGE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
_IFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)
_TEMPLATE_VOLID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]:vztmpl/[A-Za-z0-9][A-Za-z0-9._+\-]*$", re.IGNORECASE)
_SSH_KEY = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$"
)
_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_SEARCHDOMAIN = re.compile(rf"^({_LABEL}\.)*{_LABEL}$")
PROXIMITY_TAG = "proximity"


def check_hostname(hostname: object, *, field: str = "hostname") -> str:
    """An RFC 1123 host name label: letters, digits, inner '-', at most 63 characters."""
    if not isinstance(hostname, str) or not _HOSTNAME.match(hostname):
        raise ValidationError(
            f"{field} {hostname!r} is not a valid host name",
            field=field,
            hint="Use 1 to 63 letters, digits or '-', not starting or ending with '-' (e.g. git-1)",
        )
    return hostname


class NetworkSpec(BaseModel):
    """The container's ``net0``: a veth on a bridge, DHCP or a static address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="eth0", pattern=_IFACE.pattern)
    bridge: str = Field(default="vmbr0", pattern=_BRIDGE.pattern)
    # "dhcp", or an address with its prefix length ("10.0.0.50/24", "fd00::50/64")
    ip: str = "dhcp"
    gateway: str | None = None
    vlan_tag: int | None = Field(default=None, ge=1, le=4094)
    firewall: bool = False

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value == "dhcp":
            return value
        if "/" not in value:
            raise ValueError(f"{value!r} needs its prefix length, e.g. 10.0.0.50/24 (or 'dhcp')")
        try:
            return str(ipaddress.ip_interface(value))
        except ValueError:
            raise ValueError(f"{value!r} is neither 'dhcp' nor an address with prefix (10.0.0.50/24)") from None

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"gateway {value!r} is not an IP address") from None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.gateway is not None:
            if self.ip == "dhcp":
                raise ValueError("a gateway is only given with a static ip (DHCP supplies its own)")
            if ipaddress.ip_address(self.gateway).version != ipaddress.ip_interface(self.ip).version:
                raise ValueError(f"gateway {self.gateway} and ip {self.ip} are of different IP versions")
        return self

    @property
    def static_address(self) -> str | None:
        """The static address without its prefix, or None for DHCP."""
        return None if self.ip == "dhcp" else str(ipaddress.ip_interface(self.ip).ip)

    def property_string(self) -> str:
        """The ``net0`` value PVE expects (``name=eth0,bridge=vmbr0,ip=dhcp,...``)."""
        parts = [f"name={self.name}", f"bridge={self.bridge}"]
        if self.ip == "dhcp":
            parts.append("ip=dhcp")
        elif ipaddress.ip_interface(self.ip).version == 4:
            parts.append(f"ip={self.ip}")
            if self.gateway:
                parts.append(f"gw={self.gateway}")
        else:
            parts.append(f"ip6={self.ip}")
            if self.gateway:
                parts.append(f"gw6={self.gateway}")
        if self.vlan_tag is not None:
            parts.append(f"tag={self.vlan_tag}")
        if self.firewall:
            parts.append("firewall=1")
        parts.append("type=veth")
        return ",".join(parts)


class ContainerSpec(BaseModel):
    """A container to create. ``password`` is the root password: a secret, never shown in repr."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vmid: int = Field(ge=100, le=999_999_999)
    hostname: str
    ostemplate: str
    cores: int = Field(default=2, ge=1, le=8192)
    memory_mb: int = Field(default=2048, ge=16)
    swap_mb: int = Field(default=512, ge=0)
    disk_gb: int = Field(default=8, ge=1, le=128 * 1024)
    rootfs_storage: str = Field(default="local-lvm", pattern=_STORAGE.pattern)
    unprivileged: bool = True
    nesting: bool = True
    # keyctl and fuse are root@pam-only on PVE (an API token gets 403): off unless asked
    keyctl: bool = False
    fuse: bool = False
    net: NetworkSpec = Field(default_factory=NetworkSpec)
    nameservers: tuple[str, ...] = ()
    searchdomain: str | None = Field(default=None, max_length=253)
    password: SecretStr | None = None
    ssh_public_keys: tuple[str, ...] = ()
    tags: tuple[str, ...] = (PROXIMITY_TAG,)
    description: str | None = Field(default=None, max_length=8192)
    onboot: bool = False
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError("not an RFC 1123 host name: 1-63 letters, digits or inner '-' (e.g. git-1)")
        return value

    @field_validator("ostemplate")
    @classmethod
    def _ostemplate(cls, value: str) -> str:
        if not _TEMPLATE_VOLID.match(value):
            raise ValueError(
                f"{value!r} is not a template volume id such as local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
            )
        return value

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"name server {item!r} is not an IP address") from None
        return tuple(out)

    @field_validator("searchdomain")
    @classmethod
    def _searchdomain(cls, value: str | None) -> str | None:
        if value is not None and not _SEARCHDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a DNS domain name")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        # never echo the value itself in the error
        if value is not None:
            text = value.get_secret_value()
            if len(text) < 5:
                raise ValueError("the root password must have at least 5 characters (a PVE rule)")
            if any(c in text for c in "\r\n\0"):
                raise ValueError("the root password must not contain line breaks or NUL")
        return value

    @field_validator("ssh_public_keys")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keys = tuple(k.strip() for k in value)
        for key in keys:
            if not _SSH_KEY.match(key):
                raise ValueError(f"{key[:40]!r}... is not an OpenSSH public key line (type base64 [comment])")
        return keys

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = [PROXIMITY_TAG]  # how Proximity recognises its containers: always there
        for tag in value:
            if not _TAG.match(tag):
                raise ValueError(f"tag {tag!r}: use letters, digits, '_', '-', '+', '.' (not starting with -+.)")
            if tag.lower() not in (t.lower() for t in out):
                out.append(tag)
        return tuple(out)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None or value == "host":
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Rome, or 'host'") from None
        return value

    @classmethod
    def build(cls, **fields: Any) -> ContainerSpec:
        """Like the constructor, but pydantic's errors become one :class:`ValidationError`."""
        try:
            return cls(**fields)
        except pydantic.ValidationError as exc:
            raise _validation_error(exc) from None


def _validation_error(exc: pydantic.ValidationError) -> ValidationError:
    problems = []
    first: str | None = None
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{loc}: {message}" if loc else message)
        first = first or loc or None
    return ValidationError("invalid container spec: " + "; ".join(problems), field=first)


def create_params(spec: ContainerSpec) -> dict[str, str | int]:
    """The ``POST /nodes/{node}/lxc`` form for ``spec``. Holds the root password in clear: never log it."""
    features = ["nesting=1" if spec.nesting else "nesting=0"]
    if spec.keyctl:
        features.append("keyctl=1")
    if spec.fuse:
        features.append("fuse=1")
    params: dict[str, str | int] = {
        "vmid": spec.vmid,
        "ostemplate": spec.ostemplate,
        "hostname": spec.hostname,
        "cores": spec.cores,
        "memory": spec.memory_mb,
        "swap": spec.swap_mb,
        # "<storage>:<GiB>" asks PVE to allocate a new volume of that size
        "rootfs": f"{spec.rootfs_storage}:{spec.disk_gb}",
        "unprivileged": int(spec.unprivileged),
        "features": ",".join(features),
        "net0": spec.net.property_string(),
        "tags": ";".join(spec.tags),
        "onboot": int(spec.onboot),
        "start": 0,
    }
    if spec.nameservers:
        params["nameserver"] = " ".join(spec.nameservers)
    if spec.searchdomain:
        params["searchdomain"] = spec.searchdomain
    if spec.password is not None:
        params["password"] = spec.password.get_secret_value()
    if spec.ssh_public_keys:
        # one key per line; sent form-encoded as is (the URL-encoding quirk is qemu's sshkeys, not LXC's)
        params["ssh-public-keys"] = "\n".join(spec.ssh_public_keys) + "\n"
    if spec.description:
        params["description"] = spec.description
    if spec.timezone:
        params["timezone"] = spec.timezone
    return params


def spec_from_settings(
    settings: Settings,
    *,
    vmid: int,
    hostname: str,
    ostemplate: str,
    resources: Resources | None = None,
    address: str | None = None,
    password: str | SecretStr | None = None,
    tags: tuple[str, ...] = (),
    description: str | None = None,
) -> ContainerSpec:
    """A spec with the settings' defaults: resources not given, network, DNS, SSH keys, privileges.

    ``address`` is the static pool address reserved for it (required when ``ip_mode`` is static,
    refused in DHCP mode)."""
    res = resources or Resources()
    pool = settings.pool()
    if pool is not None:
        if address is None:
            raise ValidationError("ip_mode is static: reserve an address from the pool first", field="address")
        if address not in pool:
            raise ValidationError(f"address {address} is not in the pool {settings.ip_pool}", field="address")
        net: dict[str, Any] = {"ip": f"{address}/{pool.prefix_length}", "gateway": settings.gateway}
    elif address is not None:
        raise ValidationError("ip_mode is dhcp: no static address is given", field="address")
    else:
        net = {"ip": "dhcp"}
    return ContainerSpec.build(
        vmid=vmid,
        hostname=hostname,
        ostemplate=ostemplate,
        cores=res.cores or settings.default_cores,
        memory_mb=res.memory_mb or settings.default_memory_mb,
        swap_mb=res.swap_mb if res.swap_mb is not None else settings.default_swap_mb,
        disk_gb=res.disk_gb or settings.default_disk_gb,
        rootfs_storage=settings.rootfs_storage,
        unprivileged=settings.unprivileged,
        net={"bridge": settings.bridge, "vlan_tag": settings.vlan_tag, **net},
        nameservers=tuple(settings.dns_servers),
        password=SecretStr(password) if isinstance(password, str) else password,
        ssh_public_keys=tuple(settings.ssh_public_keys),
        tags=tags,
        description=description,
        timezone=settings.timezone,
    )
