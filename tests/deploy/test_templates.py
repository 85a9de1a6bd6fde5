"""OS templates: present (no download), absent (aplinfo download), by package/OS name, unknown."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import NotFoundError, ValidationError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.templates import Appliance, ensure_template, find_appliance, template_volid
from tests.deploy._helpers import TEMPLATE, TEMPLATE_VOLID, put_template
from tests.harness.pve import HarnessPve


def _requests(pve: HarnessPve, method: str, suffix: str) -> int:
    return sum(1 for r in pve.recorded if r.method == method and r.path.endswith(suffix))


def test_present_template_is_used_without_download(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    put_template(pve)
    before = pve_client.request_count
    assert ensure_template(pve_client, "pve1", storage="local", template=TEMPLATE) == TEMPLATE_VOLID
    assert pve_client.request_count - before == 1  # one content listing
    assert _requests(pve, "GET", "/aplinfo") == 0 and _requests(pve, "POST", "/aplinfo") == 0


def test_absent_template_is_downloaded_then_present(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    events: list[tuple[str, str]] = []
    volid = ensure_template(
        pve_client,
        "pve1",
        storage="local",
        template=TEMPLATE,
        emit=lambda message, level="info": events.append((level, message)),
    )
    assert volid == TEMPLATE_VOLID
    posts = [r for r in pve.recorded if r.method == "POST" and r.path.endswith("/nodes/pve1/aplinfo")]
    assert len(posts) == 1
    assert posts[0].params() == {"storage": "local", "template": TEMPLATE}
    assert "vztmpl/" + TEMPLATE in pve.storages["local"]["volumes"]
    messages = [m for _level, m in events]
    assert messages[0] == f"downloading template {TEMPLATE} to local on node pve1"
    assert any("download of" in m and "finished" in m for m in messages)  # the task's log line
    assert messages[-1] == f"template {TEMPLATE} is ready"
    # a second call finds it: no second download
    assert ensure_template(pve_client, "pve1", storage="local", template=TEMPLATE) == TEMPLATE_VOLID
    assert _requests(pve, "POST", "/aplinfo") == 1


def test_package_name_picks_the_newest_version_from_the_index(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    pve.appliances.append(
        {
            "template": "debian-12-standard_12.10-1_amd64.tar.zst",
            "package": "debian-12-standard",
            "os": "debian-12",
            "version": "12.10-1",
            "type": "lxc",
            "section": "system",
        }
    )
    volid = ensure_template(pve_client, "pve1", storage="local", template="debian-12-standard")
    assert volid == "local:vztmpl/debian-12-standard_12.10-1_amd64.tar.zst"  # 12.10 is newer than 12.7
    # by OS name, a version already on the storage is enough: no second download
    assert ensure_template(pve_client, "pve1", storage="local", template="debian-12") == volid
    assert _requests(pve, "POST", "/aplinfo") == 1


def test_package_name_is_satisfied_by_any_local_version(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    older = put_template(pve, "debian-12-standard_12.2-1_amd64.tar.zst")
    assert ensure_template(pve_client, "pve1", storage="local", template="debian-12-standard") == older
    assert _requests(pve, "GET", "/aplinfo") == 0


def test_unknown_template_is_a_clear_not_found(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    with pytest.raises(NotFoundError, match="no template 'gentoo-current'") as info:
        ensure_template(pve_client, "pve1", storage="local", template="gentoo-current")
    assert "alpine-3.20-default" in str(info.value) and "debian-12-standard" in str(info.value)
    with pytest.raises(NotFoundError, match=r"debian-12-standard_99\.0-1_amd64\.tar\.zst"):
        ensure_template(pve_client, "pve1", storage="local", template="debian-12-standard_99.0-1_amd64.tar.zst")
    assert _requests(pve, "POST", "/aplinfo") == 0


def test_storage_without_template_content_is_refused_before_download(
    pve: HarnessPve, pve_client: ProxmoxClient
) -> None:
    with pytest.raises(ValidationError, match="'local-lvm' on node pve1 cannot hold container templates") as info:
        ensure_template(pve_client, "pve1", storage="local-lvm", template=TEMPLATE)
    assert "local" in str(info.value)
    assert _requests(pve, "POST", "/aplinfo") == 0


def test_inputs_are_checked_before_any_request(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    with pytest.raises(ValidationError, match="not a template name"):
        ensure_template(pve_client, "pve1", storage="local", template="../etc/passwd")
    with pytest.raises(ValidationError, match="storage id"):
        ensure_template(pve_client, "pve1", storage="lo cal", template=TEMPLATE)
    with pytest.raises(ValidationError, match="node name"):
        ensure_template(pve_client, "pve 1", storage="local", template=TEMPLATE)
    assert pve_client.request_count == 0
    assert template_volid("local", TEMPLATE) == TEMPLATE_VOLID


def test_find_appliance_order() -> None:
    index = [
        Appliance(
            template="debian-12-turnkey-gitea_18.0-1_amd64.tar.gz",
            package="debian-12-turnkey-gitea",
            os="debian-12",
            version="18.0-1",
            section="turnkeylinux",
        ),
        Appliance(
            template="debian-12-standard_12.7-1_amd64.tar.zst",
            package="debian-12-standard",
            os="debian-12",
            version="12.7-1",
            section="system",
        ),
    ]
    found = find_appliance(index, "debian-12")
    assert found is not None and found.package == "debian-12-standard"  # OS names mean system templates
    assert find_appliance(index, "debian-12-turnkey-gitea") is index[0]
    assert find_appliance(index, "ubuntu-24.04") is None
