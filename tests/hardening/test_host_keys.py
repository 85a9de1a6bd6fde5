"""Issue 15: SSH host keys pinned on first use are kept in the database (a restart, or another
replica, checks against them); a changed key is refused with a clear error saying how to accept
it, and accepting checks the fingerprint the admin verified."""

from __future__ import annotations

import base64
from pathlib import Path

import paramiko
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from proximity_sdk._client import Proximity
from proximity_sdk.errors import HostKeyError
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox._ssh import fingerprint
from proximity_sdk.store.tables import HostKeyRow
from tests.cli.conftest import Cli, cli
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import Sshd, StandinState

__all__ = ["cli"]

NO_KEYS = "# no host keys yet: pinned on first use\n# (known_hosts text, as the remote SDK sends it)\n"


def _true_fingerprint(sshd: Sshd) -> str:
    line = next(line for line in Path(sshd.known_hosts).read_text().splitlines() if line.strip())
    entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
    assert entry is not None
    return fingerprint(entry.key)


def _open(data_dir: Path, key: bytes) -> Proximity:
    return Proximity.local(data_dir=data_dir, secret_key=key, entry_points=False)


def _echo(px: Proximity) -> str:
    host = px.hosts.get("lab")
    return px._shells.get(host.id).run("pve1", ["echo", "hello"], timeout=30).stdout


def test_a_key_pinned_on_first_use_survives_a_restart_and_a_change_is_refused(
    tmp_path: Path,
    pve: HarnessPve,
    pve_ca: str,
    ssh_access: SshAccess,
    sshd: Sshd,
    standin_state: StandinState,
    cli: Cli,
) -> None:
    key = Fernet.generate_key()
    data = cli.tmp / "cli-px"
    tofu = ssh_access.model_copy(update={"known_hosts": NO_KEYS, "trust_on_first_use": True})
    with _open(data, key) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=tofu)
        assert _echo(px).strip() == "hello"
        [pinned] = px.hosts.host_keys("lab")
        assert pinned.fingerprint == _true_fingerprint(sshd)

    # another process, which no longer trusts on first use: the key pinned by the first one holds
    with _open(data, key) as px:
        px.hosts.update("lab", ssh=tofu.model_copy(update={"trust_on_first_use": False}))
        assert _echo(px).strip() == "hello"

        # the node "was reinstalled": the pinned key is no longer the one it presents
        forged = (
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .split()[1]
            .decode()
        )
        with px.store.session() as s:
            s.execute(update(HostKeyRow).values(key=forged))
        px.hosts.update("lab", ssh=tofu.model_copy(update={"trust_on_first_use": True}))  # TOFU cannot override
        with pytest.raises(HostKeyError, match="CHANGED") as changed:
            _echo(px)
        assert "accept_host_key('lab'" in (changed.value.hint or "")
        assert "proximity hosts accept-key lab" in (changed.value.hint or "")

        wrong = "SHA256:" + base64.b64encode(b"\0" * 32).decode().rstrip("=")
        with pytest.raises(HostKeyError, match="nothing accepted"):
            px.hosts.accept_host_key("lab", node="pve1", fingerprint=wrong)
        with pytest.raises(HostKeyError):
            _echo(px)

    # accepted through the CLI, with the fingerprint read on the node's console
    env = {"PROXIMITY_SECRET_KEY": key.decode()}
    accepted = cli.ok("hosts", "accept-key", "lab", "pve1", _true_fingerprint(sshd), env=env)
    assert _true_fingerprint(sshd) in accepted.stdout
    assert _true_fingerprint(sshd) in cli.ok("hosts", "keys", "lab", env=env).stdout
    with _open(data, key) as px:
        assert _echo(px).strip() == "hello"
