"""What the SDK reads from the Proxmox API, typed.

Response models: unknown fields are ignored (new PVE releases add some), numbers that PVE
sends as strings and booleans sent as 0/1 are accepted. Field names follow the API; where
the API uses a dash, the model uses an underscore and an alias.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proximity_sdk.models._html import HtmlRepr

__all__ = [
    "ClusterResource",
    "LxcConfig",
    "LxcInterface",
    "LxcIpAddress",
    "LxcStatus",
    "NodeMemory",
    "NodeStatus",
    "PveNode",
    "PveVersion",
    "StorageStatus",
    "StorageVolume",
    "TaskLogLine",
    "TaskStatus",
]


class _Response(HtmlRepr, BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class PveVersion(_Response):
    """``GET /version``."""

    version: str
    release: str = ""
    repoid: str = ""

    @property
    def major(self) -> int:
        """The major release (8, 9, ...); 0 when the version is not numeric."""
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


class PveNode(_Response):
    """One entry of ``GET /nodes``; usage figures are absent for an offline node."""

    node: str
    status: str = "unknown"
    cpu: float | None = None
    maxcpu: int | None = None
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    ssl_fingerprint: str | None = None

    @property
    def online(self) -> bool:
        return self.status == "online"


class NodeMemory(_Response):
    total: int = 0
    used: int = 0
    free: int = 0


class NodeStatus(_Response):
    """``GET /nodes/{node}/status`` (the parts the SDK uses)."""

    cpu: float = 0.0
    uptime: int = 0
    memory: NodeMemory = Field(default_factory=NodeMemory)
    pveversion: str = ""
    kversion: str = ""
    loadavg: list[str] = Field(default_factory=list)  # PVE sends them as strings


class ClusterResource(_Response):
    """One entry of ``GET /cluster/resources``: a guest, node, storage or SDN item."""

    id: str
    type: str
    node: str | None = None
    status: str | None = None
    name: str | None = None
    vmid: int | None = None
    template: bool = False
    lock: str | None = None
    tags: str | None = None
    pool: str | None = None
    cpu: float | None = None
    maxcpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    storage: str | None = None
    content: str | None = None
    shared: bool | None = None
    hastate: str | None = None

    @property
    def tag_list(self) -> list[str]:
        return [t for t in re.split(r"[;, ]+", self.tags or "") if t]


class LxcStatus(_Response):
    """A container as ``GET /nodes/{node}/lxc`` lists it and ``status/current`` shows it."""

    vmid: int
    status: str
    name: str | None = None
    lock: str | None = None
    tags: str | None = None
    template: bool = False
    cpus: float | None = None
    cpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    swap: int | None = None
    maxswap: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    pid: int | None = None
    ha: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def tag_list(self) -> list[str]:
        return [t for t in re.split(r"[;, ]+", self.tags or "") if t]


_NET = re.compile(r"^net\d+$")
_MOUNT = re.compile(r"^(rootfs|mp\d+)$")


class LxcConfig(_Response):
    """``GET /nodes/{node}/lxc/{vmid}/config``.

    Indexed keys are gathered: ``net`` holds ``net0``, ``net1``, ... and ``mounts`` holds
    ``rootfs`` and ``mpN``, each as the raw property string. ``raw`` keeps every key as sent.
    """

    hostname: str | None = None
    ostype: str | None = None
    arch: str | None = None
    memory: int | None = None
    swap: int | None = None
    cores: int | None = None
    unprivileged: bool = False
    features: str | None = None
    tags: str | None = None
    lock: str | None = None
    description: str | None = None
    onboot: bool = False
    template: bool = False
    digest: str | None = None
    net: dict[str, str] = Field(default_factory=dict)
    mounts: dict[str, str] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "raw" in data:
            return data
        out = dict(data)
        out["raw"] = dict(data)
        out["net"] = {k: str(v) for k, v in data.items() if _NET.match(k)}
        out["mounts"] = {k: str(v) for k, v in data.items() if _MOUNT.match(k)}
        return out

    @property
    def tag_list(self) -> list[str]:
        return [t for t in re.split(r"[;, ]+", self.tags or "") if t]

    def net_options(self, key: str = "net0") -> dict[str, str]:
        """The ``key=value`` options of one network device (``name``, ``bridge``, ``ip``, ``hwaddr``, ...)."""
        out: dict[str, str] = {}
        for part in self.net.get(key, "").split(","):
            name, sep, value = part.partition("=")
            if sep:
                out[name] = value
        return out


class LxcIpAddress(_Response):
    ip_address_type: str = Field(alias="ip-address-type")
    ip_address: str = Field(alias="ip-address")
    prefix: int


class LxcInterface(_Response):
    """One entry of ``GET /nodes/{node}/lxc/{vmid}/interfaces`` (a running container only)."""

    name: str
    hwaddr: str | None = None
    inet: str | None = None
    inet6: str | None = None
    ip_addresses: list[LxcIpAddress] = Field(default_factory=list, alias="ip-addresses")

    @property
    def ipv4(self) -> str | None:
        """The first IPv4 address without its prefix, or None."""
        for item in self.ip_addresses:
            if item.ip_address_type == "inet":
                return item.ip_address
        return self.inet.split("/", 1)[0] if self.inet else None


class StorageStatus(_Response):
    """One entry of ``GET /nodes/{node}/storage``."""

    storage: str
    type: str
    content: str = ""
    active: bool = False
    enabled: bool = True
    shared: bool = False
    total: int | None = None
    used: int | None = None
    avail: int | None = None

    @property
    def content_types(self) -> list[str]:
        return [c for c in self.content.split(",") if c]


class StorageVolume(_Response):
    """One entry of ``GET /nodes/{node}/storage/{storage}/content``."""

    volid: str
    format: str = ""
    size: int = 0
    content: str | None = None
    ctime: int | None = None
    vmid: int | None = None
    notes: str | None = None
    protected: bool = False
    used: int | None = None


class TaskStatus(_Response):
    """``GET /nodes/{node}/tasks/{upid}/status``; ``exitstatus`` only once stopped."""

    upid: str
    node: str
    status: str
    type: str = ""
    id: str = ""
    user: str = ""
    tokenid: str | None = None
    pid: int | None = None
    pstart: int | None = None
    starttime: int | None = None
    exitstatus: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


class TaskLogLine(_Response):
    """One line of ``GET /nodes/{node}/tasks/{upid}/log``: ``n`` is 1-based."""

    n: int
    t: str = ""
