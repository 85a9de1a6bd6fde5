"""`SandboxPve`: fakepve plus what it lacks for an app to deploy, back up and restore.

Stock fakepve (see ``shared/reference/fakepve-notes.md``) gives a running container no address,
lists no appliance templates and makes vzdump store nothing. The sandbox adds, and the test
harness builds on the same class:

- DHCP leases: a running container's ``dhcp`` interface gets ``10.10.x.y/24`` (stable per vmid);
- ``aplinfo``: a small appliance index (Debian 12, Alpine 3.20), and downloads that store the
  template in the storage as a ``download`` task;
- vzdump and restore with real archive files (:mod:`proximity_sdk.sandbox._vzdump`);
- PVE versions per node and OCI image pulls that store a template (:mod:`proximity_sdk.sandbox._oci`);
- ``add_token``: an API token holding only some privileges (fakepve's ACL; ``GET /access/permissions``
  answers from it, and every API call checks it as PVE's schema says);
- ``/cluster/resources`` guest status as PVE builds it from the RRD cache pvestatd broadcasts
  (pve-manager ``PVE::API2Tools::extract_vm_stats``): ``unknown`` for a guest with no entry yet
  (``status_unknown``: a test adds the VMIDs, e.g. right after a start or a migrate), and for the
  guests of a node that went offline, the last status that node broadcast (fakepve said
  ``unknown``; a departed node's guests stay listed as ``running``); with ``rrd_lag`` set to N,
  a container started or migrated reads ``unknown`` in the next N listings, as it does on PVE until
  pvestatd broadcasts its new state;
- ``/cluster/status`` needs ``Sys.Audit`` on ``/`` as on PVE;
- clones that copy the container's files (:mod:`proximity_sdk.sandbox._clone`);
- ``worker_processes``: each task a real process, alive while it runs, as a PVE worker is
  (:mod:`proximity_sdk.sandbox._workers`; the sandbox turns it on when its tasks take time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fakepve import FakePve
from fakepve.lxc import split_props
from fakepve.model import PveError
from fakepve.server import USER

from proximity_sdk.sandbox._clone import CloneFilesMixin
from proximity_sdk.sandbox._oci import OciMixin
from proximity_sdk.sandbox._real._table import NodeTableMixin
from proximity_sdk.sandbox._vzdump import VzdumpMixin
from proximity_sdk.sandbox._workers import WorkerProcessesMixin

__all__ = ["DEFAULT_APPLIANCES", "SandboxPve"]

DEFAULT_APPLIANCES: tuple[dict[str, str], ...] = (
    {
        "template": "debian-12-standard_12.7-1_amd64.tar.zst",
        "package": "debian-12-standard",
        "os": "debian-12",
        "version": "12.7-1",
        "type": "lxc",
        "section": "system",
        "headline": "Debian 12 Bookworm (standard)",
        "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
        "location": "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
        "source": "http://download.proxmox.com/images",
    },
    {
        "template": "alpine-3.20-default_20240908_amd64.tar.xz",
        "package": "alpine-3.20-default",
        "os": "alpine-3.20",
        "version": "20240908",
        "type": "lxc",
        "section": "system",
        "headline": "Alpine Linux 3.20 (default)",
        "infopage": "https://alpinelinux.org",
        "location": "http://download.proxmox.com/images/system/alpine-3.20-default_20240908_amd64.tar.xz",
        "source": "http://download.proxmox.com/images",
    },
)


# fakepve ships no type information
class SandboxPve(WorkerProcessesMixin, NodeTableMixin, CloneFilesMixin, OciMixin, VzdumpMixin, FakePve):  # type: ignore[misc]
    """fakepve with DHCP leases, an appliance index, vzdump archives and OCI pulls (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: vmid -> the DHCP address leased to its first dhcp interface ("10.10.x.y")
        self.leases: dict[int, str] = {}
        self.appliances: list[dict[str, str]] = [dict(a) for a in DEFAULT_APPLIANCES]
        #: PVE seconds an aplinfo download takes
        self.download_secs = 0.0
        #: VMIDs with no RRD entry yet: /cluster/resources lists them with status "unknown"
        self.status_unknown: set[int] = set()
        # vmid -> the status its node last broadcast, for the guests of offline nodes
        self._broadcast: dict[int, str] = {}
        #: how many /cluster/resources listings a just started or migrated container reads "unknown" in
        self.rrd_lag = 0
        self._lagging: dict[int, int] = {}

    # ------------------------------------------------------- cluster resources

    def set_node_offline(self, node: str, offline: bool = True) -> None:
        """fakepve's, plus: the node's guests keep the status it last broadcast while it is offline."""
        for ct in self.cts:
            if ct.node == node:
                if offline:
                    self._broadcast.setdefault(ct.vmid, ct.status)
                else:
                    self._broadcast.pop(ct.vmid, None)
        super().set_node_offline(node, offline)

    async def _cluster_status(self, request: Any) -> Any:
        # pve-manager API2/Cluster.pm get_status: check => ['perm', '/', ['Sys.Audit']] (fakepve checked nothing)
        self.require(request[USER], "/", "Sys.Audit")
        return await super()._cluster_status(request)

    async def _lxc_start(self, user: str, v: dict[str, Any]) -> Any:
        upid = await super()._lxc_start(user, v)
        if self.rrd_lag:
            self._lagging[int(v["vmid"])] = self.rrd_lag
        return upid

    async def _lxc_migrate(self, user: str, v: dict[str, Any]) -> Any:
        upid = await super()._lxc_migrate(user, v)
        if self.rrd_lag:
            self._lagging[int(v["vmid"])] = self.rrd_lag
        return upid

    def ct_resources(self, user: str, kind: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = super().ct_resources(user, kind)
        for item in items:
            vmid = item.get("vmid")
            if vmid in self._lagging:
                self._lagging[vmid] -= 1
                if self._lagging[vmid] <= 0:
                    del self._lagging[vmid]
                item["status"] = "unknown"
            elif vmid in self.status_unknown:
                item["status"] = "unknown"
            elif vmid in self._broadcast and not self.nodes.get(item.get("node"), {}).get("online", True):
                item["status"] = self._broadcast[vmid]
        return items

    # --------------------------------------------------------------- tokens

    def add_token(self, token_id: str, secret: str, grants: Mapping[str, Iterable[str]]) -> None:
        """An API token (``user@realm!name``) holding ``grants`` (ACL path -> privileges, propagated
        below the path) and nothing else. Once any grant exists, tokens without one hold nothing;
        root@pam's tokens hold everything, as on PVE."""
        fake: Any = self  # fakepve's attributes carry no types
        fake.apitokens[token_id] = secret
        if fake.acl is None:
            fake.acl = {}
        fake.acl.setdefault(token_id, [])
        for path, privileges in grants.items():
            self.grant(token_id, path, *privileges)

    # --------------------------------------------------------------- DHCP

    def lease_for(self, vmid: int) -> str:
        """The address the fake DHCP server gives this container (stable per vmid)."""
        if vmid not in self.leases:
            self.leases[vmid] = f"10.10.{(vmid // 250) % 250}.{vmid % 250 + 2}"
        return self.leases[vmid]

    async def _lxc_interfaces(self, user: str, v: dict[str, Any]) -> Any:
        data = await super()._lxc_interfaces(user, v)
        if not data:
            return data
        ct = self._find_ct(v["node"], v["vmid"])
        for key in sorted(k for k in ct.config if k.startswith("net") and k[3:].isdigit()):
            props = split_props(ct.config[key])[1]
            if props.get("ip") != "dhcp":
                continue
            name = props.get("name", "eth0")
            for item in data:
                if item.get("name") == name and not item.get("inet"):
                    address = self.lease_for(ct.vmid)
                    item["inet"] = f"{address}/24"
                    item["ip-addresses"].append({"ip-address-type": "inet", "ip-address": address, "prefix": "24"})
        return data

    # ------------------------------------------------------------- aplinfo

    def _routes_harness_aplinfo(self) -> list[tuple[str, str, Callable[..., Awaitable[Any]]]]:
        # fakepve collects the routes of every `_routes_*` method
        return [
            ("GET", "/nodes/{node}/aplinfo", self._aplinfo_list),
            ("POST", "/nodes/{node}/aplinfo", self._aplinfo_download),
        ]

    async def _aplinfo_list(self, v: dict[str, Any], user: str) -> list[dict[str, str]]:
        return [dict(a) for a in self.appliances]

    async def _aplinfo_download(self, v: dict[str, Any], user: str) -> str:
        """PVE's apl_download: a ``download`` task that stores ``<storage>:vztmpl/<template>``."""
        template, storage = v["template"], v["storage"]
        if not any(a["template"] == template for a in self.appliances):
            raise PveError(400, "Parameter verification failed.", {"template": "no such template"})
        store = self.storages.get(storage)
        if store is None:
            raise PveError(500, f"storage '{storage}' does not exist")
        if "vztmpl" not in str(store.get("content", "")).split(","):
            raise PveError(500, f"storage '{storage}' does not support templates")

        async def body() -> str:
            await self.pause(self.download_secs)
            self.store_file(storage, template, 128 * 1024**2, content="vztmpl")
            return f"download of '{template}' to '{storage}:vztmpl/{template}' finished"

        upid: str = await self.task(v["node"], "download", template, user, body)
        return upid
