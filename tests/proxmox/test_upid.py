"""UPID parsing: PVE's 9 fields, PBS's 10, and what is refused."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import ValidationError
from proximity_sdk.proxmox.upid import Upid, is_upid

PVE = "UPID:pve1:0001A2B3:00C0FFEE:6650A1B2:vzcreate:105:root@pam:"
PBS = "UPID:pbs1:000004D2:0000162E:0000002A:6650A1B2:backup:store1\\x3act-105:admin@pbs!sync:"


def test_pve_upid_fields() -> None:
    upid = Upid.parse(PVE)
    assert (upid.product, upid.node, upid.type, upid.id, upid.user) == (
        "pve",
        "pve1",
        "vzcreate",
        "105",
        "root@pam",
    )
    assert (upid.pid, upid.pstart, upid.starttime) == (0x1A2B3, 0xC0FFEE, 0x6650A1B2)
    assert upid.token is None
    assert upid.task_id is None
    assert upid.comment == ""
    assert upid.vmid == 105
    assert str(upid) == PVE


def test_pve_upid_with_token_empty_id_and_long_pstart() -> None:
    upid = Upid.parse("UPID:node-2:00000001:1000000FF:6650A1B2:vzdump::root@pam!px:")
    assert upid.id == ""
    assert upid.vmid is None
    assert upid.user == "root@pam"
    assert upid.token == "px"
    assert upid.pstart == 0x1000000FF


def test_pbs_upid_has_task_id() -> None:
    upid = Upid.parse(PBS)
    assert upid.product == "pbs"
    assert upid.task_id == 0x2A
    assert upid.starttime == 0x6650A1B2
    assert upid.type == "backup"
    assert upid.id == "store1\\x3act-105"
    assert upid.user == "admin@pbs"
    assert upid.token == "sync"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "OK",
        "UPID:pve1:0001A2B3:00C0FFEE:6650A1B2:vzcreate:105:root@pam",  # no trailing colon
        "UPID:pve 1:0001A2B3:00C0FFEE:6650A1B2:vzcreate:105:root@pam:",  # space in node
        "UPID:pve1:1A2B3:00C0FFEE:6650A1B2:vzcreate:105:root@pam:",  # short pid
        "UPID:pve1:0001A2B3:00C0FFEE:6650A1B2::105:root@pam:",  # empty type
    ],
)
def test_malformed_upids_are_refused(text: str) -> None:
    assert not is_upid(text)
    with pytest.raises(ValidationError) as info:
        Upid.parse(text)
    assert info.value.field == "upid"


def test_non_string_is_refused() -> None:
    with pytest.raises(ValidationError):
        Upid.parse(None)
