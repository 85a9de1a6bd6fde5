"""Settings: defaults for new containers, capacity, network, timing. One record, validated as a whole."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from proximity_sdk.models._html import HtmlRepr

__all__ = ["IPPool", "Settings", "SettingsUpdate"]

_STORAGE = r"^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$"
_TEMPLATE = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$"
_BRIDGE = r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$"  # a Linux interface name: at most 15 characters
_SSH_KEY = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$"
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IPPool(HtmlRepr, BaseModel):
    """A parsed static pool: the first and last address containers may get, in ``subnet``."""

    model_config = ConfigDict(frozen=True)

    first: IPAddress
    last: IPAddress
    subnet: IPNetwork

    @property
    def prefix_length(self) -> int:
        return self.subnet.prefixlen

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return ip.version == self.first.version and self.first <= ip <= self.last  # type: ignore[operator]


def parse_pool(pool: str, subnet: str | None) -> IPPool:
    """``10.0.0.0/24`` (its host addresses) or ``10.0.0.100-10.0.0.200`` (with ``ip_subnet``)."""
    if "-" in pool:
        start_text, _, end_text = pool.partition("-")
        try:
            first = ipaddress.ip_address(start_text.strip())
            last = ipaddress.ip_address(end_text.strip())
        except ValueError as exc:
            raise ValueError(f"ip_pool {pool!r}: {exc}") from None
        if first.version != last.version or first > last:  # type: ignore[operator]
            raise ValueError(f"ip_pool {pool!r}: the range must go from a lower to a higher address")
        if subnet is None:
            raise ValueError(f"ip_pool {pool!r} is a range: also give ip_subnet (e.g. 10.0.0.0/24)")
        network = ipaddress.ip_network(subnet, strict=False)
        if first not in network or last not in network:
            raise ValueError(f"ip_pool {pool!r} is not inside ip_subnet {subnet}")
        return IPPool(first=first, last=last, subnet=network)
    try:
        network = ipaddress.ip_network(pool, strict=False)
    except ValueError as exc:
        raise ValueError(f"ip_pool {pool!r} is neither CIDR (10.0.0.0/24) nor a range (a-b): {exc}") from None
    if network.num_addresses < 4:
        raise ValueError(f"ip_pool {pool!r} is too small; give at least a /30")
    if subnet is not None and not network.subnet_of(ipaddress.ip_network(subnet, strict=False)):  # type: ignore[arg-type]
        raise ValueError(f"ip_pool {pool!r} is not inside ip_subnet {subnet}")
    outer = ipaddress.ip_network(subnet, strict=False) if subnet else network
    # network and broadcast addresses are never handed out
    return IPPool(first=network.network_address + 1, last=network.broadcast_address - 1, subnet=outer)


class _SettingsFields(HtmlRepr, BaseModel):
    """Field checks shared by Settings and SettingsUpdate (cross-field checks live on Settings)."""

    @field_validator("ip_subnet", check_fields=False)
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR subnet: {exc}") from None

    @field_validator("gateway", check_fields=False)
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None

    @field_validator("dns_servers", check_fields=False)
    @classmethod
    def _dns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"DNS server {item!r} is not an IP address") from None
        return out

    @field_validator("ssh_public_keys", check_fields=False)
    @classmethod
    def _keys(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for key in value:
            if not _SSH_KEY.match(key.strip()):
                raise ValueError(f"{key[:40]!r}... is not an OpenSSH public key line (type base64 [comment])")
        return [key.strip() for key in value]

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is None or value == "host":
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Rome, or 'host'") from None
        return value


class Settings(_SettingsFields):
    """Everything configurable about new containers and the engine. Read with ``px.settings.get()``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # resources of a new container when neither the request nor the catalog says otherwise
    default_cores: int = Field(default=2, ge=1, le=8192)
    default_memory_mb: int = Field(default=2048, ge=16)
    default_swap_mb: int = Field(default=512, ge=0)
    default_disk_gb: int = Field(default=8, ge=1)
    rootfs_storage: str = Field(default="local-lvm", pattern=_STORAGE)
    template_storage: str = Field(default="local", pattern=_STORAGE)
    # OS template of new containers when the catalog entry names none: a family (``alpine``,
    # ``debian``: its newest release on the node), ``auto`` (Alpine, else Debian), an appliance
    # package name (its newest version) or an exact file name from the node's appliance index
    default_template: str = Field(default="auto", pattern=_TEMPLATE)
    # a node fits an app while node memory x this ratio covers the memory promised to containers
    memory_overcommit: float = Field(default=2.0, gt=0, le=100)
    unprivileged: bool = True
    ssh_public_keys: list[str] = Field(default_factory=list)
    timezone: str | None = None
    # network of new containers
    bridge: str = Field(default="vmbr0", pattern=_BRIDGE)
    ip_mode: Literal["dhcp", "static"] = "dhcp"
    ip_pool: str | None = None
    ip_subnet: str | None = None
    gateway: str | None = None
    dns_servers: list[str] = Field(default_factory=list)
    vlan_tag: int | None = Field(default=None, ge=1, le=4094)
    # engine timing and limits
    restore_grace_hours: float = Field(default=24.0, ge=0)
    operation_lease_seconds: int = Field(default=60, ge=5, le=3600)
    # how long a deploy or start waits for the app's main port to answer
    health_timeout_seconds: int = Field(default=120, ge=1, le=3600)
    vmid_min: int | None = Field(default=None, ge=100, le=999_999_999)
    vmid_max: int | None = Field(default=None, ge=100, le=999_999_999)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.vmid_min is not None and self.vmid_max is not None and self.vmid_min > self.vmid_max:
            raise ValueError(f"vmid_min ({self.vmid_min}) is above vmid_max ({self.vmid_max})")
        if self.ip_mode == "static":
            if self.ip_pool is None or self.gateway is None:
                raise ValueError("ip_mode 'static' needs ip_pool and gateway")
            pool = parse_pool(self.ip_pool, self.ip_subnet)
            gateway = ipaddress.ip_address(self.gateway)
            if gateway not in pool.subnet:
                raise ValueError(f"gateway {gateway} is not in the pool's subnet {pool.subnet}")
        elif self.ip_pool is not None:
            parse_pool(self.ip_pool, self.ip_subnet)  # checked even while unused, so switching is safe
        return self

    def pool(self) -> IPPool | None:
        """The static pool, parsed (None in DHCP mode)."""
        if self.ip_mode != "static" or self.ip_pool is None:
            return None
        return parse_pool(self.ip_pool, self.ip_subnet)


class SettingsUpdate(_SettingsFields):
    """Request: change some settings. Fields not given stay; a nullable field given as None is cleared.
    The merged result is validated as a whole before anything is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_cores: int | None = Field(default=None, ge=1, le=8192)
    default_memory_mb: int | None = Field(default=None, ge=16)
    default_swap_mb: int | None = Field(default=None, ge=0)
    default_disk_gb: int | None = Field(default=None, ge=1)
    rootfs_storage: str | None = Field(default=None, pattern=_STORAGE)
    template_storage: str | None = Field(default=None, pattern=_STORAGE)
    default_template: str | None = Field(default=None, pattern=_TEMPLATE)
    memory_overcommit: float | None = Field(default=None, gt=0, le=100)
    unprivileged: bool | None = None
    ssh_public_keys: list[str] | None = None
    timezone: str | None = None
    bridge: str | None = Field(default=None, pattern=_BRIDGE)
    ip_mode: Literal["dhcp", "static"] | None = None
    ip_pool: str | None = None
    ip_subnet: str | None = None
    gateway: str | None = None
    dns_servers: list[str] | None = None
    vlan_tag: int | None = Field(default=None, ge=1, le=4094)
    restore_grace_hours: float | None = Field(default=None, ge=0)
    operation_lease_seconds: int | None = Field(default=None, ge=5, le=3600)
    health_timeout_seconds: int | None = Field(default=None, ge=1, le=3600)
    vmid_min: int | None = Field(default=None, ge=100, le=999_999_999)
    vmid_max: int | None = Field(default=None, ge=100, le=999_999_999)
