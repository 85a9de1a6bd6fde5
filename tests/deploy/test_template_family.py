"""The default template from the node's own index: a family's newest release, never a pinned one."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.settings import Settings
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.templates import Appliance, ensure_template, family_of, pick_family
from tests.deploy._helpers import put_template
from tests.harness.pve import HarnessPve


def _alpine(release: str, date: str) -> dict[str, str]:
    return {
        "template": f"alpine-{release}-default_{date}_amd64.tar.xz",
        "package": f"alpine-{release}-default",
        "os": "alpine",
        "version": f"{release}-0",
        "type": "lxc",
        "section": "system",
    }


def _index_without_alpine_3_20(pve: HarnessPve) -> None:
    # as on a node in 2026: 3.20 is past its end of life, 3.21 and 3.22 are listed
    pve.appliances[:] = [a for a in pve.appliances if not a["package"].startswith("alpine")]
    pve.appliances += [_alpine("3.21", "20250108"), _alpine("3.22", "20250617")]


def test_the_default_setting_is_no_pinned_release() -> None:
    assert Settings().default_template == "auto"


def test_family_and_release_of_package_names() -> None:
    assert family_of("alpine-3.22-default") == ("alpine", "3.22")
    assert family_of("debian-13-standard") == ("debian", "13")
    assert family_of("ubuntu-24.04-standard") == ("ubuntu", "24.04")
    assert family_of("turnkey-gitea") == ("", "")


def test_pick_family_prefers_the_newest_release_then_a_present_file() -> None:
    index = [
        Appliance.model_validate(a)
        for a in (_alpine("3.9", "20190101"), _alpine("3.22", "20250617"), _alpine("3.21", "20250108"))
    ]
    assert pick_family("alpine", index, []) == "alpine-3.22-default_20250617_amd64.tar.xz"  # 3.22 > 3.9
    # an older build of the newest release already downloaded: no download of the index's build
    present = ["alpine-3.22-default_20250101_amd64.tar.xz", "alpine-3.21-default_20250108_amd64.tar.xz"]
    assert pick_family("alpine", index, present) == "alpine-3.22-default_20250101_amd64.tar.xz"
    # a newer release present on the storage but gone from the index still counts
    assert (
        pick_family("alpine", index, ["alpine-3.23-default_20251201_amd64.tar.xz"])
        == "alpine-3.23-default_20251201_amd64.tar.xz"
    )
    assert pick_family("debian", index, []) is None


def test_auto_downloads_the_newest_alpine_the_node_lists(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    _index_without_alpine_3_20(pve)
    events: list[str] = []
    volid = ensure_template(
        pve_client, "pve1", storage="local", template="auto", emit=lambda message, level="info": events.append(message)
    )
    assert volid == "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz"
    assert events[0].startswith("template alpine-3.22-default_20250617_amd64.tar.xz chosen")
    # the family by name gives the same, from the storage now
    assert ensure_template(pve_client, "pve1", storage="local", template="alpine") == volid


def test_auto_falls_back_to_debian_when_the_node_lists_no_alpine(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    pve.appliances[:] = [a for a in pve.appliances if not a["package"].startswith("alpine")]
    put_template(pve, "debian-13-standard_13.1-1_amd64.tar.zst")  # downloaded earlier, newer than the index's 12
    assert (
        ensure_template(pve_client, "pve1", storage="local", template="auto")
        == "local:vztmpl/debian-13-standard_13.1-1_amd64.tar.zst"
    )


def test_a_family_the_node_lacks_names_what_its_index_has(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    with pytest.raises(NotFoundError) as info:
        ensure_template(pve_client, "pve1", storage="local", template="gentoo")
    text = str(info.value) + " " + str(info.value.hint)
    assert "no gentoo template on local of node pve1" in text
    assert "alpine, debian" in text and "debian-12-standard" in text
