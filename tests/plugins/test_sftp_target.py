"""The proximity-sftp plugin through its entry point, against the real sshd: back up, copy off,
delete from the node, restore from the copy; a damaged copy is refused; options are checked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed, ValidationError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.store.tables import BackupTargetRow
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import Sshd, StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


@pytest.fixture
def px(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Iterator[Proximity]:
    """Proximity with the installed plugins (entry points), one host whose node shell is the test sshd."""
    standin_state.script("ss", stdout=LISTENING.format(port=3000))
    pve.on_archive = standin_state.set_volume_path
    with Proximity.local(
        data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=True, lease_seconds=5
    ) as proximity:
        proximity.hosts.add(
            "lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access
        )
        yield proximity


def _sftp_options(sshd: Sshd, path: Path, **extra: object) -> dict[str, object]:
    return {
        "host": sshd.host,
        "port": sshd.port,
        "user": sshd.user,
        "key_file": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "path": str(path),
        **extra,
    }


def test_the_plugin_offers_its_kinds_through_the_entry_point() -> None:
    assert {"proxmox", "sftp", "directory"} <= set(PluginManager(entry_points=True).backup_target_kinds())
    assert "sftp" not in PluginManager(entry_points=False).backup_target_kinds()


def test_sftp_round_trip_backup_copy_off_delete_from_node_restore(
    px: Proximity, pve: HarnessPve, sshd: Sshd, tmp_path: Path
) -> None:
    offsite = tmp_path / "offsite"
    px.backups.targets.add(name="offsite", kind="sftp", options=_sftp_options(sshd, offsite))
    app = px.apps.deploy("gitea", hostname="git-1").wait(timeout=60)

    op = px.backups.create(app.id, target="offsite")
    backup = op.wait(timeout=60)
    assert backup.volid is not None and backup.location is not None
    filename = backup.volid.rsplit("/", 1)[-1]
    assert backup.location == f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{offsite}/{filename}"
    copy = offsite / filename
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert copy.stat().st_size == backup.size_bytes
    assert (offsite / f"{filename}.sha256").read_text() == f"{digest}  {filename}\n"
    assert not (offsite / f"{filename}.part").exists()
    # copied off, then deleted from the node: the node's storage no longer holds it
    assert list(pve.dump_dir("local").iterdir()) == []
    assert any(e.message.startswith("copying local:backup/") for e in op.events())

    restored = px.backups.restore(backup.id).wait(timeout=60)
    assert restored.status == AppStatus.RUNNING and restored.vmid != app.vmid
    assert pve.restored_from[restored.vmid] == [backup.volid]  # pushed back under its own volid
    assert list(pve.dump_dir("local").iterdir()) == []  # the temporary volume is gone again

    # a damaged copy is found before anything changes
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    failing = px.backups.restore(backup.id)
    with pytest.raises(OperationFailed) as failed:
        failing.wait(timeout=60)
    assert failed.value.step == "check"
    assert px.apps.get(app.id).vmid == restored.vmid and pve.ct(restored.vmid).status == "running"

    assert px.backups.delete(backup.id).wait(timeout=30) is None
    assert sorted(p.name for p in offsite.iterdir()) == []


def test_directory_target_keeps_a_node_copy_and_restores_in_place(
    px: Proximity, pve: HarnessPve, tmp_path: Path
) -> None:
    shelf = tmp_path / "shelf"
    px.backups.targets.add(name="shelf", kind="directory", options={"path": str(shelf), "keep_on_node": True})
    app = px.apps.deploy("gitea", hostname="git-2").wait(timeout=60)
    backup = px.backups.create(app.id, target="shelf", compression="gzip").wait(timeout=60)
    filename = str(backup.volid).rsplit("/", 1)[-1]
    assert (shelf / filename).read_bytes() == pve.archive_path(str(backup.volid)).read_bytes()

    again = px.backups.restore(backup.id, in_place=True).wait(timeout=60)
    assert again.vmid == app.vmid and again.status == AppStatus.RUNNING
    assert pve.restored_from[app.vmid] == [backup.volid]
    assert pve.archive_path(str(backup.volid)).exists()  # it was on the node: used, not removed

    px.backups.delete(backup.id).wait(timeout=30)
    assert not (shelf / filename).exists() and not pve.archive_path(str(backup.volid)).exists()


def test_options_are_checked_and_stored_encrypted(px: Proximity, sshd: Sshd, tmp_path: Path) -> None:
    good = _sftp_options(sshd, tmp_path / "offsite")
    for bad, field in (
        ({k: v for k, v in good.items() if k != "host"}, "options.host"),
        ({**good, "path": "relative/dir"}, "options.path"),
        ({**good, "password": "pw"}, "options"),          # a key and a password
        ({**good, "known_hosts": "/no/such/file"}, "options.known_hosts"),
        ({**good, "colour": "blue"}, "options.colour"),
        ({**good, "port": 70000}, "options.port"),
    ):  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            px.backups.targets.add(name="offsite", kind="sftp", options=bad)
        assert refused.value.field == field, str(refused.value)
    target = px.backups.targets.add(
        name="offsite", kind="sftp", options={**good, "key_file": None, "password": "s3cret-pw"}
    )
    assert target.kind == "sftp" and not hasattr(target, "options")
    with px.store.session() as s:
        stored = s.execute(select(BackupTargetRow.options)).scalar_one()
    assert "s3cret-pw" not in stored and str(tmp_path) not in stored
    assert px.store.backups.target_options("offsite")["password"] == "s3cret-pw"
