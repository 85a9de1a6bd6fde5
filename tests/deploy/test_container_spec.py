"""ContainerSpec and its POST /nodes/{node}/lxc parameters: validation at the boundary, PVE's formats."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from proximity_sdk.errors import ValidationError
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings
from proximity_sdk.proxmox.containers import (
    ContainerSpec,
    NetworkSpec,
    check_hostname,
    create_params,
    spec_from_settings,
)
from tests.deploy._helpers import TEMPLATE_VOLID
from tests.harness.pve_schema import require_shared, schemas

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvb20gYm9vbSBib29tIGJvb20gYm9vbSBib29tIGJv admin@laptop"


def _full() -> ContainerSpec:
    return ContainerSpec(
        vmid=123,
        hostname="git-1",
        ostemplate=TEMPLATE_VOLID,
        cores=4,
        memory_mb=3072,
        swap_mb=0,
        disk_gb=16,
        rootfs_storage="local-zfs",
        net=NetworkSpec(bridge="vmbr1", ip="192.168.5.20/24", gateway="192.168.5.1", vlan_tag=30, firewall=True),
        nameservers=("1.1.1.1", "2606:4700:4700::1111"),
        searchdomain="lan.example",
        password=SecretStr("s3cret-root-pw"),
        ssh_public_keys=(KEY,),
        tags=("gitea", "team-a"),
        description="Gitea deployed by Proximity",
        onboot=True,
        timezone="Europe/Rome",
    )


def test_create_params_use_pve_formats() -> None:
    params = create_params(_full())
    assert params == {
        "vmid": 123,
        "ostemplate": TEMPLATE_VOLID,
        "hostname": "git-1",
        "cores": 4,
        "memory": 3072,
        "swap": 0,
        "rootfs": "local-zfs:16",
        "unprivileged": 1,
        "features": "nesting=1",
        "net0": "name=eth0,bridge=vmbr1,ip=192.168.5.20/24,gw=192.168.5.1,tag=30,firewall=1,type=veth",
        "tags": "proximity;gitea;team-a",
        "onboot": 1,
        "start": 0,
        "nameserver": "1.1.1.1 2606:4700:4700::1111",
        "searchdomain": "lan.example",
        "password": "s3cret-root-pw",
        "ssh-public-keys": KEY + "\n",
        "description": "Gitea deployed by Proximity",
        "timezone": "Europe/Rome",
    }


@pytest.mark.parametrize("version", ["9.1", "8.4"])
def test_create_params_pass_both_pve_schemas(version: str) -> None:
    if version == "8.4":
        require_shared("the PVE 8.4 API schema (pve-api/apidata-pve8.json)")
    form = {k: str(v) for k, v in create_params(_full()).items()}
    problems = schemas()[version].check("POST", "/nodes/pve1/lxc", form)
    assert problems == []
    ipv6 = _full().model_copy(update={"net": NetworkSpec(ip="fd00::20/64", gateway="fd00::1")})
    form = {k: str(v) for k, v in create_params(ipv6).items()}
    assert form["net0"] == "name=eth0,bridge=vmbr0,ip6=fd00::20/64,gw6=fd00::1,type=veth"
    assert schemas()[version].check("POST", "/nodes/pve1/lxc", form) == []


def test_password_is_never_shown() -> None:
    spec = _full()
    assert "s3cret" not in repr(spec) and "s3cret" not in str(spec)
    with pytest.raises(ValidationError) as info:
        ContainerSpec.build(vmid=100, hostname="a", ostemplate=TEMPLATE_VOLID, password="abc")
    assert "at least 5 characters" in str(info.value) and "abc" not in str(info.value)


def test_proximity_tag_is_always_first_and_not_duplicated() -> None:
    spec = ContainerSpec(vmid=100, hostname="a", ostemplate=TEMPLATE_VOLID, tags=("web", "Proximity", "web"))
    assert spec.tags == ("proximity", "web")
    assert ContainerSpec(vmid=100, hostname="a", ostemplate=TEMPLATE_VOLID).tags == ("proximity",)


def test_features_only_nesting_by_default_root_only_ones_when_asked() -> None:
    plain = ContainerSpec(vmid=100, hostname="a", ostemplate=TEMPLATE_VOLID)
    assert create_params(plain)["features"] == "nesting=1"
    extra = plain.model_copy(update={"keyctl": True, "fuse": True, "nesting": False})
    assert create_params(extra)["features"] == "nesting=0,keyctl=1,fuse=1"


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"hostname": "-bad"}, "hostname", "RFC 1123"),
        ({"hostname": "a" * 64}, "hostname", "RFC 1123"),
        ({"hostname": "web.example.com"}, "hostname", "RFC 1123"),
        ({"ostemplate": "local:iso/debian.iso"}, "ostemplate", "not a template volume id"),
        ({"ostemplate": "debian-12.tar.zst"}, "ostemplate", "not a template volume id"),
        ({"vmid": 99}, "vmid", "greater than or equal to 100"),
        ({"rootfs_storage": "local lvm"}, "rootfs_storage", "pattern"),
        ({"tags": ("bad tag",)}, "tags", "tag 'bad tag'"),
        ({"nameservers": ("dns.google",)}, "nameservers", "not an IP address"),
        ({"ssh_public_keys": ("hello",)}, "ssh_public_keys", "OpenSSH public key"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"net": {"bridge": "vmbr0;rm -rf"}}, "net.bridge", "pattern"),
        ({"net": {"ip": "10.0.0.5"}}, "net.ip", "prefix length"),
        ({"net": {"ip": "dhcp", "gateway": "10.0.0.1"}}, "net", "only given with a static ip"),
        ({"net": {"ip": "10.0.0.5/24", "gateway": "fd00::1"}}, "net", "different IP versions"),
        ({"memory": 512}, "memory", "unknown field"),
    ],
)
def test_bad_values_are_refused_naming_the_field(fields: dict[str, object], field: str, text: str) -> None:
    base: dict[str, object] = {"vmid": 100, "hostname": "web", "ostemplate": TEMPLATE_VOLID}
    with pytest.raises(ValidationError, match="invalid container spec") as info:
        ContainerSpec.build(**{**base, **fields})
    assert info.value.field == field
    assert text in str(info.value)


def test_check_hostname() -> None:
    assert check_hostname("Git-1") == "Git-1"
    with pytest.raises(ValidationError, match="not a valid host name") as info:
        check_hostname("git_1")
    assert info.value.field == "hostname"


def test_spec_from_settings_dhcp_uses_defaults_and_network() -> None:
    settings = Settings(
        default_cores=3,
        default_memory_mb=1024,
        default_swap_mb=0,
        default_disk_gb=12,
        rootfs_storage="tank",
        bridge="vmbr2",
        vlan_tag=7,
        dns_servers=["9.9.9.9"],
        ssh_public_keys=[KEY],
        unprivileged=False,
    )
    spec = spec_from_settings(
        settings,
        vmid=200,
        hostname="app",
        ostemplate=TEMPLATE_VOLID,
        resources=Resources(memory_mb=4096),
        password="generated-pw",
        tags=("gitea",),
        description="d",
    )
    params = create_params(spec)
    assert (params["cores"], params["memory"], params["swap"], params["rootfs"]) == (3, 4096, 0, "tank:12")
    assert params["net0"] == "name=eth0,bridge=vmbr2,ip=dhcp,tag=7,type=veth"
    assert params["nameserver"] == "9.9.9.9"
    assert params["unprivileged"] == 0
    assert params["tags"] == "proximity;gitea"
    with pytest.raises(ValidationError, match="ip_mode is dhcp"):
        spec_from_settings(settings, vmid=200, hostname="app", ostemplate=TEMPLATE_VOLID, address="10.0.0.5")


def test_spec_from_settings_static_takes_the_reserved_address() -> None:
    settings = Settings(
        ip_mode="static", ip_pool="10.20.0.100-10.20.0.120", ip_subnet="10.20.0.0/24", gateway="10.20.0.1"
    )
    spec = spec_from_settings(settings, vmid=200, hostname="app", ostemplate=TEMPLATE_VOLID, address="10.20.0.101")
    assert create_params(spec)["net0"] == "name=eth0,bridge=vmbr0,ip=10.20.0.101/24,gw=10.20.0.1,type=veth"
    assert spec.net.static_address == "10.20.0.101"
    with pytest.raises(ValidationError, match="reserve an address"):
        spec_from_settings(settings, vmid=200, hostname="app", ostemplate=TEMPLATE_VOLID)
    with pytest.raises(ValidationError, match="not in the pool"):
        spec_from_settings(settings, vmid=200, hostname="app", ostemplate=TEMPLATE_VOLID, address="10.20.0.99")
