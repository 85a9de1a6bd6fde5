"""Discover and adopt a container made by hand (through the Proxmox API and the node shell, not by
Proximity) with a compose project running in it: the app is running, its port found, its URL answers."""

from __future__ import annotations

import json

import pytest

from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.registries import RegistrySettings
from proximity_sdk.operations.provision import Provisioner
from proximity_sdk.proxmox.tasks import wait_task
from tests.harness.images import web_entry
from tests.real_node.conftest import RealLab, answers

pytestmark = pytest.mark.real_node

VMID = 190


@pytest.mark.timeout(600)
def test_discover_and_adopt_a_container_made_by_hand(real_lab: RealLab) -> None:
    px, pve = real_lab.px, real_lab.pve
    host = px.hosts.get("real")
    client = px._clients.get(host.id)
    upid = client.post(
        "/nodes/pve1/lxc",
        vmid=VMID,
        ostemplate=pve.template_volid,
        hostname="legacy",
        rootfs="local-lvm:8",
        net0="name=eth0,bridge=vmbr0,ip=dhcp",
        memory=1024,
        start=1,
    )
    wait_task(client, str(upid), timeout=120)
    # what an administrator did in it: Docker, trusting the registry, and a compose project
    project = Provisioner(px._shells.get(host.id), "pve1", VMID, project="legacy")
    project.install_docker(registries=RegistrySettings(insecure=[real_lab.registry.address]))
    compose = web_entry(real_lab.registry, "1.0", "1")["docker_compose"]
    project.write_project(json.dumps(compose), "")
    project.up()

    found = [c for c in px.apps.discover() if c.vmid == VMID]
    assert len(found) == 1 and found[0].name == "legacy" and found[0].status == "running"
    app = px.apps.adopt(VMID, hostname="legacy").wait(timeout=300)
    assert app.status == AppStatus.RUNNING and app.adopted and app.vmid == VMID
    assert 8080 in [p.port for p in app.ports]
    assert app.url == f"http://{app.address}:8080"
    assert answers(app.url) == (200, "web v1\n")
    assert [c.vmid for c in px.apps.discover()] == []  # it is an app now
