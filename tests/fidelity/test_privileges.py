"""The privileges a Proximity token needs (pve-container's permission checks), checked when a host is
added or tested through ``GET /access/permissions`` (docs/fidelity.md, "Privileges")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import PermissionDeniedError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.privileges import GUEST_REQUIREMENTS, missing_privileges, required_privileges
from tests.harness.pve import HarnessPve

TOKEN = "px@pve!proximity"
SECRET = "0b6f7a52-0000-4000-8000-00000000000f"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"

EVERYTHING = {
    "/vms": [r.privileges[0] for r in GUEST_REQUIREMENTS],
    "/storage/local-lvm": ["Datastore.AllocateSpace"],
    "/storage/local": ["Datastore.AllocateSpace", "Datastore.AllocateTemplate"],
    "/": ["Sys.Audit"],
    "/nodes": ["Sys.Audit", "Sys.AccessNetwork"],
    "/sdn/zones/localnetwork/vmbr0": ["SDN.Use"],
}


@pytest.fixture
def px(tmp_path: Path) -> Iterator[Proximity]:
    with Proximity.local(data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False) as px:
        yield px


def _add(px: Proximity, pve: HarnessPve, ca: str) -> None:
    px.hosts.add("lab", url=pve.url, token_id=TOKEN, token_secret=SECRET, ca_file=ca)


def test_a_token_lacking_privileges_is_refused_with_each_one_named(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    pve.version = "9.1.2"  # 9.1: Sys.AccessNetwork for OCI pulls (SDN.Use: every PVE >= 8.0)
    grants = {
        path: [p for p in privs if p not in ("VM.Backup", "SDN.Use", "Sys.AccessNetwork")]
        for path, privs in EVERYTHING.items()
    }
    pve.add_token(TOKEN, SECRET, grants)
    with pytest.raises(PermissionDeniedError) as caught:
        _add(px, pve, pve_ca)
    text = str(caught.value)
    assert "token px@pve!proximity on host 'lab' lacks 3 privilege(s)" in text
    assert "VM.Backup on /vms (for vzdump" in text
    assert "SDN.Use on /sdn/zones/localnetwork/vmbr0 (for attaching containers to vmbr0)" in text
    assert "Sys.AccessNetwork on /nodes/pve1 (for pulling OCI images)" in text
    assert "docs/fidelity.md" in caught.value.hint and "check=False" in caught.value.hint
    assert list(px.hosts.list()) == []  # nothing stored


def test_a_token_with_every_privilege_is_added_and_test_reports_a_lost_one(
    px: Proximity, pve: HarnessPve, pve_ca: str
) -> None:
    pve.version = "9.1.2"
    pve.add_token(TOKEN, SECRET, EVERYTHING)
    _add(px, pve, pve_ca)
    assert px.hosts.test("lab").ok
    pve.acl[TOKEN] = [(path, {p for p in privs if p != "VM.PowerMgmt"}) for path, privs in pve.acl[TOKEN]]
    check = px.hosts.test("lab")
    assert not check.ok and check.error_kind == "PermissionDeniedError"
    assert [(g.privilege, g.path) for g in check.missing_privileges] == [("VM.PowerMgmt", "/vms")]
    assert check.error is not None and "VM.PowerMgmt on /vms (for start, shutdown, stop)" in check.error


def test_pve8_needs_no_sys_accessnetwork_and_unchecked_add_registers_anyway(
    px: Proximity, pve: HarnessPve, pve_ca: str
) -> None:
    pve.version = "8.4.1"
    pve.add_token(TOKEN, SECRET, {p: [x for x in v if x != "Sys.AccessNetwork"] for p, v in EVERYTHING.items()})
    _add(px, pve, pve_ca)  # no OCI pulls below 9.1
    pve.add_token("px@pve!weak", SECRET, {"/vms": ["VM.Audit"]})
    px.hosts.add("weak", url=pve.url, token_id="px@pve!weak", token_secret=SECRET, ca_file=pve_ca, check=False)
    assert [h.name for h in px.hosts.list()] == ["lab", "weak"]
    assert len(px.hosts.test("weak").missing_privileges) > 5


def test_root_holds_everything(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    requirements = required_privileges(
        nodes=["pve1"],
        rootfs_storage="local-lvm",
        template_storage="local",
        backup_storages=["local"],
        bridge="vmbr0",
        oci_nodes=["pve1"],
    )
    assert missing_privileges(pve_client, requirements) == []
    # one request per distinct path
    assert pve_client.request_count == len({r.path for r in requirements})


def test_every_requirement_is_in_the_docs() -> None:
    text = DOCS.read_text()
    for requirement in required_privileges(
        nodes=["<node>"],
        rootfs_storage="<rootfs_storage>",
        template_storage="<template_storage>",
        backup_storages=["<backup storage>"],
        bridge="<bridge>",
        oci_nodes=["<node>"],
    ):
        for privilege in requirement.privileges:
            row = re.compile(rf"^\| `{re.escape(privilege)}` \| `{re.escape(requirement.path)}` \|", re.MULTILINE)
            assert row.search(text), f"{privilege} on {requirement.path} is not in docs/fidelity.md"


def test_cluster_resources_hides_guests_without_vm_audit(pve: HarnessPve, pve_ca: str) -> None:
    # pve-manager API2/Cluster.pm resources: next if !check(/vms/<vmid>, VM.Audit): reconcile would see
    # every app vanish, which is why VM.Audit is required
    pve.add_ct(400, status="running")
    pve.add_token("px@pve!blind", SECRET, {"/nodes": ["Sys.Audit"]})
    with ProxmoxClient(url=pve.url, token_id="px@pve!blind", token_secret=SECRET, ca_file=pve_ca) as client:
        assert [r for r in client.cluster_resources() if r.type == "lxc"] == []
        assert missing_privileges(client, GUEST_REQUIREMENTS[:1])[0].privilege == "VM.Audit"


def test_a_bridge_needs_sdn_use_on_pve8_too(pve: HarnessPve, pve_ca: str) -> None:
    # pve-guest-common GuestHelpers.pm check_vnet_access (since 8.0), via check_ct_modify_config_perm:
    # the peer project saw it on PVE 9; the source has it since June 2023
    pve.version = "8.4.1"
    grants = {p: v for p, v in EVERYTHING.items() if not p.startswith("/sdn")}
    pve.add_token("px@pve!nosdn", SECRET, grants)
    params = dict(
        ostemplate="local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        rootfs="local-lvm:4",
        net0="name=eth0,bridge=vmbr0,ip=dhcp",
    )
    with ProxmoxClient(url=pve.url, token_id="px@pve!nosdn", token_secret=SECRET, ca_file=pve_ca) as client:
        with pytest.raises(PermissionDeniedError, match=r"/sdn/zones/localnetwork/vmbr0, SDN\.Use"):
            client.post("/nodes/pve1/lxc", vmid=410, **params)
        check = required_privileges(
            nodes=["pve1"],
            rootfs_storage="local-lvm",
            template_storage="local",
            backup_storages=["local"],
            bridge="vmbr0",
        )
        assert [str(m) for m in missing_privileges(client, check)] == [
            "SDN.Use on /sdn/zones/localnetwork/vmbr0 (for attaching containers to vmbr0)"
        ]
        pve.grant("px@pve!nosdn", "/sdn/zones/localnetwork/vmbr0", "SDN.Use")
        client.post("/nodes/pve1/lxc", vmid=410, **params)
