"""Boundary validation: bad input is refused before anything is sent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from proximity_sdk.errors import ValidationError
from proximity_sdk.proxmox import validate
from proximity_sdk.proxmox.client import ProxmoxClient
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve


def _closed_port() -> int:
    """A port nothing listens on: a request there fails to connect, it is no ValidationError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("127.0.0.1:8006", "no scheme"),
        ("pve1", "no scheme"),
        ("ftp://pve1:8006", "scheme"),
        ("http://pve1:8006", "plain http"),
        ("https://", "no valid host"),
        ("https://pve1:8006/api2/json", "path"),
        ("https://pve1:99999", "invalid port"),
        ("", "empty"),
    ],
)
def test_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate.check_url(url)
    assert info.value.field == "url"
    assert fragment in str(info.value)


def test_url_without_scheme_suggests_the_fix() -> None:
    with pytest.raises(ValidationError) as info:
        validate.check_url("pve1")
    assert "https://pve1:8006" in str(info.value)


def test_good_urls_are_normalised() -> None:
    assert validate.check_url("https://pve1:8006/") == "https://pve1:8006"
    assert validate.check_url("https://[::1]:8006") == "https://[::1]:8006"
    assert validate.check_url("https://10.0.0.1") == "https://10.0.0.1"


@pytest.mark.parametrize("token", ["root@pam", "root!px", "root@pam!", "root@pam!1x", "root @pam!px", None])
def test_bad_token_ids(token: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate.check_token_id(token)
    assert info.value.field == "token_id"


def test_token_id_split() -> None:
    assert validate.check_token_id("admin@pve!proximity") == ("admin@pve", "proximity")


@pytest.mark.parametrize("node", ["pve 1", "pve1.example.com", "-pve", "pve-", "", 5])
def test_bad_node_names(node: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate.check_node_name(node)
    assert info.value.field == "node"


@pytest.mark.parametrize("vmid", [99, 1_000_000_000, True, "abc", 1.5])
def test_bad_vmids(vmid: object) -> None:
    with pytest.raises(ValidationError):
        validate.check_vmid(vmid)


def test_vmid_bounds_and_numeric_string() -> None:
    assert validate.check_vmid(100) == 100
    assert validate.check_vmid(999_999_999) == 999_999_999
    assert validate.check_vmid("105") == 105


@pytest.mark.parametrize("storage", ["a", "1local", "local lvm", "local-"])
def test_bad_storage_ids(storage: str) -> None:
    with pytest.raises(ValidationError):
        validate.check_storage_id(storage)


def test_missing_ca_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        validate.check_ca_file(tmp_path / "nope.pem")
    assert info.value.field == "ca_file"


def test_bad_timeouts() -> None:
    for bad in (5, (5,), (0, 5), (5, -1), ("5", 5)):
        with pytest.raises(ValidationError):
            validate.check_timeout(bad)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "127.0.0.1:{port}", "token_id": TOKEN_ID, "token_secret": TOKEN_SECRET}, "url"),
        (
            {"url": "https://127.0.0.1:{port}", "token_id": "root@pam", "token_secret": TOKEN_SECRET},
            "token_id",
        ),
        ({"url": "https://127.0.0.1:{port}", "token_id": TOKEN_ID, "token_secret": ""}, "token_secret"),
        (
            {
                "url": "https://127.0.0.1:{port}",
                "token_id": TOKEN_ID,
                "token_secret": "x",
                "ca_file": "/nonexistent/ca.pem",
            },
            "ca_file",
        ),
        ({"url": "https://127.0.0.1:{port}", "user": "root", "password": "x"}, "user"),
        ({"url": "https://127.0.0.1:{port}"}, "token_id"),
        (
            {
                "url": "https://127.0.0.1:{port}",
                "token_id": TOKEN_ID,
                "token_secret": "x",
                "user": "root@pam",
                "password": "x",
            },
            "token_id",
        ),
        (
            {"url": "https://127.0.0.1:{port}", "token_id": TOKEN_ID, "token_secret": "x", "timeout": 5},
            "timeout",
        ),
    ],
)
def test_client_refuses_bad_input_before_any_network_call(kwargs: dict[str, object], field: str) -> None:
    # The port is closed: had the client tried to connect, it would raise UnreachableError instead.
    port = _closed_port()
    options = {k: (v.format(port=port) if isinstance(v, str) and k == "url" else v) for k, v in kwargs.items()}
    with pytest.raises(ValidationError) as info:
        ProxmoxClient(**options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_client_refuses_bad_url_and_the_fake_sees_nothing(pve: HarnessPve, pve_ca: str) -> None:
    with pytest.raises(ValidationError):
        ProxmoxClient(
            url=pve.url.removeprefix("https://"), token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca
        )
    assert pve.recorded == []


def test_node_name_with_spaces_refused_before_sending(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    with pytest.raises(ValidationError) as info:
        pve_client.lxc_list("pve 1")
    assert info.value.field == "node"
    with pytest.raises(ValidationError):
        pve_client.lxc_status("pve1", 42)
    assert pve.recorded == []
    assert pve_client.request_count == 0
