"""Issue 15: a backup's digest is recorded in the database and checked on restore: an archive
replaced on the SFTP server together with its checksum file is refused."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from tests.harness.pve import HarnessPve
from tests.harness.sshd import Sshd
from tests.plugins.test_sftp_target import _sftp_options, px

__all__ = ["px"]


def test_an_archive_replaced_with_its_checksum_file_is_refused(
    px: Proximity, pve: HarnessPve, sshd: Sshd, tmp_path: Path
) -> None:
    offsite = tmp_path / "offsite"
    px.backups.targets.add(name="offsite", kind="sftp", options=_sftp_options(sshd, offsite))
    app = px.apps.deploy("gitea", hostname="git-1").wait(timeout=60)
    first = px.backups.create(app.id, target="offsite").wait(timeout=60)
    time.sleep(1.1)  # vzdump names archives by the second
    second = px.backups.create(app.id, target="offsite", note="another day").wait(timeout=60)
    assert first.volid and second.volid
    name_1, name_2 = first.volid.rsplit("/", 1)[-1], second.volid.rsplit("/", 1)[-1]
    assert first.digest == "sha256:" + hashlib.sha256((offsite / name_1).read_bytes()).hexdigest()
    assert px.backups.get(first.id).digest == first.digest  # kept in the database

    # whoever can write to the SFTP server swaps in another archive, and its checksum file with it
    (offsite / name_1).write_bytes((offsite / name_2).read_bytes())
    sidecar = (offsite / f"{name_2}.sha256").read_text().split()[0]
    (offsite / f"{name_1}.sha256").write_text(f"{sidecar}  {name_1}\n")

    restoring = px.backups.restore(first.id)
    with pytest.raises(OperationFailed, match="not the archive this backup made") as refused:
        restoring.wait(timeout=60)
    assert refused.value.step == "fetch"
    assert px.apps.get(app.id).vmid == app.vmid and pve.ct(app.vmid).status == "running"  # nothing changed

    # the untouched one still restores
    assert px.backups.restore(second.id).wait(timeout=60).status.value == "running"
