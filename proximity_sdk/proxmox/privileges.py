"""The Proxmox privileges a Proximity token needs, and checking them through ``GET /access/permissions``.

Every requirement names the privilege, the ACL path it is checked on, what Proximity does with it
and where Proxmox checks it (docs/fidelity.md, "Privileges", has the same table). Guest privileges
are checked on ``/vms``: Proxmox checks them on ``/vms/<vmid>``, which a grant on ``/vms`` or ``/``
with *propagate* reaches for every VMID Proximity may pick (Proximity does not create into pools).

:func:`missing_privileges` asks ``GET /access/permissions?path=<path>`` once per distinct path.
With ``path`` PVE answers the effective privileges there (``PVE::RPCEnvironment::permissions``:
inheritance, groups, roles and, for a token with privilege separation, the intersection with its
user), so no ACL logic is re-implemented here. The answer maps paths to privileges; every
privilege of every entry counts (PVE answers one entry; fakepve answers the granting ancestors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from proximity_sdk.errors import PermissionDeniedError
from proximity_sdk.proxmox.client import ProxmoxClient

__all__ = [
    "GUEST_REQUIREMENTS",
    "MissingPrivilege",
    "Requirement",
    "describe_missing",
    "missing_privileges",
    "raise_for_missing",
    "required_privileges",
]


@dataclass(frozen=True, slots=True)
class Requirement:
    """``privileges`` on ``path`` (all of them, or any one when ``any_of``), for ``used_for``."""

    privileges: tuple[str, ...]
    path: str
    used_for: str
    source: str
    any_of: bool = False

    def describe(self) -> str:
        what = " or ".join(self.privileges) if self.any_of else ", ".join(self.privileges)
        return f"{what} on {self.path}"


@dataclass(frozen=True, slots=True)
class MissingPrivilege:
    """A privilege the token lacks (``privilege`` reads ``A or B`` for an any-of requirement)."""

    privilege: str
    path: str
    used_for: str

    def __str__(self) -> str:
        return f"{self.privilege} on {self.path} (for {self.used_for})"


_LXC = "pve-container src/PVE/API2/LXC.pm"
_LXCPM = "pve-container src/PVE/LXC.pm check_ct_modify_config_perm"
_STATUS = "pve-container src/PVE/API2/LXC/Status.pm"


def _guest(privilege: str, used_for: str, source: str) -> Requirement:
    return Requirement((privilege,), "/vms", used_for, source)


GUEST_REQUIREMENTS: tuple[Requirement, ...] = (
    _guest(
        "VM.Audit",
        "listing containers (/cluster/resources hides guests without it), status, config, interfaces",
        "pve-manager PVE/API2/Cluster.pm resources; " + _LXC + " vm config/status",
    ),
    _guest(
        "VM.Allocate",
        "creating, restoring into a new container, destroying, cloning to a new VMID, nesting",
        _LXC + " create_vm, destroy_vm, clone_vm; " + _LXCPM + " (features: nesting)",
    ),
    _guest("VM.PowerMgmt", "start, shutdown, stop", _STATUS + " vm_start/vm_shutdown/vm_stop"),
    _guest("VM.Config.Disk", "the root disk at create, resize", _LXCPM + " (rootfs, mpN); " + _LXC + " resize_vm"),
    _guest("VM.Config.CPU", "cores", _LXCPM + " (cores, cpulimit, cpuunits)"),
    _guest("VM.Config.Memory", "memory and swap", _LXCPM + " (memory, swap)"),
    _guest("VM.Config.Network", "net0, hostname, nameserver", _LXCPM + " (netN, hostname, nameserver)"),
    _guest(
        "VM.Config.Options",
        "ostype, onboot, tags, description, env (also to read env back)",
        _LXCPM + " (other options); delete_read_restricted_options (env); "
        "pve-guest-common GuestHelpers.pm assert_tag_permissions",
    ),
    _guest(
        "VM.Snapshot",
        "the snapshot a clone of a running container is taken from",
        "pve-container src/PVE/API2/LXC/Snapshot.pm snapshot",
    ),
    _guest("VM.Clone", "clone", _LXC + " clone_vm"),
    _guest("VM.Migrate", "migrate", _LXC + " migrate_vm"),
    _guest(
        "VM.Backup",
        "vzdump, restore over an existing container, reading a backup's config, deleting backups",
        "pve-manager PVE/API2/VZDump.pm vzdump; pve-storage check_volume_access (backup); "
        + _LXC
        + " create_vm (restore && force)",
    ),
)


def required_privileges(
    *,
    nodes: Iterable[str],
    rootfs_storage: str,
    template_storage: str,
    backup_storages: Iterable[str],
    bridge: str,
    sdn: bool = True,
    oci_nodes: Iterable[str] = (),
) -> list[Requirement]:
    """Every requirement for a host with these nodes and storages (settings) and bridge.

    ``sdn``: a node runs PVE 8.0 or later (a container's bridge needs ``SDN.Use``: pve-guest-common
    ``check_vnet_access``, added in June 2023 for 8.0); ``oci_nodes``: the nodes that pull OCI
    images (PVE >= 9.1: ``Sys.AccessNetwork``)."""
    out = list(GUEST_REQUIREMENTS)
    out.append(
        Requirement(
            ("Datastore.AllocateSpace",),
            f"/storage/{rootfs_storage}",
            "container disks (create, restore, clone, resize)",
            _LXC + " create_vm check_and_activate_storage; " + _LXCPM,
        )
    )
    out.append(
        Requirement(
            ("Datastore.AllocateTemplate",),
            f"/storage/{template_storage}",
            "downloading templates (aplinfo) and pulling OCI images",
            "pve-manager PVE/API2/Nodes.pm apl_download; pve-storage API2/Storage/Status.pm oci_registry_pull",
        )
    )
    out.append(
        Requirement(
            ("Datastore.AllocateSpace", "Datastore.Audit"),
            f"/storage/{template_storage}",
            "creating from a template and listing templates",
            "pve-storage src/PVE/Storage.pm check_volume_access (vztmpl)",
            any_of=True,
        )
    )
    for storage in dict.fromkeys(backup_storages):
        out.append(
            Requirement(
                ("Datastore.AllocateSpace",),
                f"/storage/{storage}",
                "writing, listing and restoring backups",
                "pve-manager PVE/API2/VZDump.pm; pve-storage check_volume_access (backup)",
            )
        )
    out.append(
        Requirement(
            ("Sys.Audit",),
            "/",
            "the quorum check before placing a container (/cluster/status)",
            "pve-manager PVE/API2/Cluster.pm get_status",
        )
    )
    for node in dict.fromkeys(nodes):
        out.append(
            Requirement(
                ("Sys.Audit",),
                f"/nodes/{node}",
                "node memory figures for placement (/cluster/resources hides them without it)",
                "pve-manager PVE/API2Tools.pm extract_node_stats ($exclude_stats)",
            )
        )
    for node in dict.fromkeys(oci_nodes):
        out.append(
            Requirement(
                ("Sys.AccessNetwork",),
                f"/nodes/{node}",
                "pulling OCI images",
                "pve-storage API2/Storage/Status.pm oci_registry_pull",
            )
        )
    if sdn:
        out.append(
            Requirement(
                ("SDN.Use",),
                f"/sdn/zones/localnetwork/{bridge}",
                f"attaching containers to {bridge}",
                "pve-guest-common src/PVE/GuestHelpers.pm check_vnet_access (via " + _LXCPM + ")",
            )
        )
    return out


def _held(answer: object) -> set[str]:
    held: set[str] = set()
    if isinstance(answer, Mapping):
        for privileges in answer.values():
            if isinstance(privileges, Mapping):
                held.update(str(p) for p in privileges)
    return held


def missing_privileges(client: ProxmoxClient, requirements: Sequence[Requirement]) -> list[MissingPrivilege]:
    """What the client's user or token lacks, one ``/access/permissions`` request per distinct path."""
    held: dict[str, set[str]] = {}
    missing: list[MissingPrivilege] = []
    for requirement in requirements:
        if requirement.path not in held:
            held[requirement.path] = _held(client.request("GET", "/access/permissions", {"path": requirement.path}))
        have = held[requirement.path]
        if requirement.any_of:
            if not have.intersection(requirement.privileges):
                missing.append(
                    MissingPrivilege(" or ".join(requirement.privileges), requirement.path, requirement.used_for)
                )
            continue
        missing.extend(
            MissingPrivilege(p, requirement.path, requirement.used_for) for p in requirement.privileges if p not in have
        )
    return missing


def describe_missing(missing: Sequence[MissingPrivilege], *, who: str) -> str:
    return f"{who} lacks {len(missing)} privilege(s) Proximity needs: " + "; ".join(str(m) for m in missing)


def raise_for_missing(missing: Sequence[MissingPrivilege], *, who: str) -> None:
    """A :class:`PermissionDeniedError` naming each missing privilege and path (nothing when none)."""
    if not missing:
        return
    raise PermissionDeniedError(
        describe_missing(missing, who=who),
        hint="Grant them (Datacenter > Permissions: a role with these privileges on each path, propagate on) to "
        "the user and, with privilege separation, to the token too; docs/fidelity.md lists every one. "
        "Or call px.hosts.add(..., check=False) to register the host unchecked",
    )
