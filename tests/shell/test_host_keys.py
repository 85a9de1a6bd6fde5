"""Host keys: unknown refused by default, pinned on first use only when asked, changed refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from proximity_sdk.errors import AuthenticationError, HostKeyError, UnreachableError, ValidationError
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.sshd import Sshd, StandinState, _free_port, _keygen, start_sshd


def _access(server: Sshd, known_hosts: Path | str | None, **extra: object) -> SshAccess:
    return SshAccess.model_validate(
        {
            "user": server.user,
            "port": server.port,
            "key_file": str(server.client_key),
            "known_hosts": None if known_hosts is None else str(known_hosts),
            "addresses": {"pve1": server.host},
            **extra,
        }
    )


def test_unknown_host_key_is_refused_by_default(sshd: Sshd, standin_state: StandinState, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")

    with NodeShell(_access(sshd, known_hosts)) as shell, pytest.raises(HostKeyError) as caught:
        shell.run("pve1", ["pct", "status", "105"], timeout=10)

    assert "is not in" in str(caught.value)
    assert "SHA256:" in str(caught.value)
    assert known_hosts.read_text() == ""
    assert standin_state.calls() == []  # nothing ran


def test_missing_known_hosts_file_refuses_too(sshd: Sshd, tmp_path: Path) -> None:
    with NodeShell(_access(sshd, tmp_path / "absent")) as shell, pytest.raises(HostKeyError):
        shell.run("pve1", ["true"], timeout=10)

    assert not (tmp_path / "absent").exists()


def test_trust_on_first_use_pins_then_a_changed_key_is_refused(tmp_path: Path) -> None:
    known_hosts = tmp_path / "pinned" / "known_hosts"  # its directory does not exist yet
    first = start_sshd(tmp_path / "node")
    try:
        access = _access(first, known_hosts, trust_on_first_use=True)
        with NodeShell(access) as shell:
            assert shell.run("pve1", ["echo", "ok"], timeout=10).stdout == "ok\n"
    finally:
        first.stop()
    pinned = known_hosts.read_text()
    assert pinned == f"[127.0.0.1]:{first.port} {first.host_public_key}\n"

    # The same address and port come back with another host key (say, a reinstalled node).
    new_key = tmp_path / "node" / "host_ed25519_new"
    _keygen(new_key)
    second = start_sshd(tmp_path / "node", port=first.port, host_key=new_key)
    try:
        with NodeShell(access) as shell, pytest.raises(HostKeyError) as caught:
            shell.run("pve1", ["echo", "ok"], timeout=10)
    finally:
        second.stop()

    assert "CHANGED" in str(caught.value)
    assert known_hosts.read_text() == pinned  # trust on first use never replaces a pinned key


def test_known_hosts_text_and_pin_callback(sshd: Sshd) -> None:
    pinned: list[str] = []
    access = _access(sshd, None, trust_on_first_use=True)

    with NodeShell(access, known_hosts_text="", on_host_key_pinned=pinned.append) as shell:
        shell.run("pve1", ["true"], timeout=10)

    assert pinned == [f"[127.0.0.1]:{sshd.port} {sshd.host_public_key}\n"]
    strict = _access(sshd, None)
    with NodeShell(strict, known_hosts_text=pinned[0]) as shell:
        assert shell.run("pve1", ["echo", "known"], timeout=10).stdout == "known\n"


def test_known_hosts_content_in_access_is_accepted(sshd: Sshd) -> None:
    # The remote SDK sends the file's content in the known_hosts field.
    access = _access(sshd, sshd.known_hosts.read_text())

    with NodeShell(access) as shell:
        assert shell.run("pve1", ["echo", "x"], timeout=10).stdout == "x\n"


def test_private_key_given_as_text(sshd: Sshd) -> None:
    key_text = sshd.client_key.read_text()
    by_field = _access(sshd, sshd.known_hosts).model_copy(update={"key_file": key_text})

    with NodeShell(by_field) as shell:
        assert shell.run("pve1", ["true"], timeout=10).exit_status == 0
    with NodeShell(by_field.model_copy(update={"key_file": None}), private_key=key_text) as shell:
        assert shell.run("pve1", ["true"], timeout=10).exit_status == 0


def test_unauthorized_key_is_an_authentication_error(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    _keygen(other)
    access = _access(sshd, sshd.known_hosts).model_copy(update={"key_file": str(other)})

    with NodeShell(access) as shell, pytest.raises(AuthenticationError) as caught:
        shell.run("pve1", ["true"], timeout=10)

    assert "pve1" in str(caught.value)


def test_nothing_listening_is_unreachable(sshd: Sshd) -> None:
    access = _access(sshd, sshd.known_hosts).model_copy(update={"port": _free_port()})

    with NodeShell(access) as shell, pytest.raises(UnreachableError):
        shell.run("pve1", ["true"], timeout=10)


@pytest.mark.parametrize(
    "key",
    [
        "/nonexistent/key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n",
    ],
)
def test_unusable_key_is_refused_at_construction(sshd: Sshd, key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NodeShell(_access(sshd, sshd.known_hosts).model_copy(update={"key_file": key}))

    assert caught.value.field == "key_file"
    assert "not a key" not in str(caught.value)  # key material is never echoed
