"""proximity.core against the product's own sandbox (`Sandbox.start()` + `add_to`), as a user trying
the collection without a cluster would."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk.models.app import AppStatus
from proximity_sdk.sandbox import Sandbox
from tests.ansible.conftest import AnsibleLab, ansible_env

PLAY = """
- name: wiki in the sandbox
  proximity.core.app:
    name: wiki
    catalog_id: wikijs
    host: sandbox
    state: {state}
"""


@pytest.mark.timeout(400)
def test_app_in_the_sandbox(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    lab = AnsibleLab(workdir=tmp_path, data_dir=tmp_path / "px", secret_key=key)
    with Sandbox.start(directory=tmp_path / "sandbox") as sandbox:
        with lab.sdk() as px:
            sandbox.add_to(px, name="sandbox")
        lab.env = {**ansible_env(tmp_path), "PROXIMITY_DATA_DIR": str(lab.data_dir), "PROXIMITY_SECRET_KEY": key}

        first = lab.play(PLAY.format(state="started"))
        assert first.rc == 0, first
        assert first.recap["changed"] == 1
        app = first.result("wiki in the sandbox")["app"]
        assert app["status"] == "running"
        assert lab.play(PLAY.format(state="started")).recap["changed"] == 0

        stopped = lab.play(PLAY.format(state="stopped"))
        assert stopped.recap["changed"] == 1
        with lab.sdk() as px:
            assert px.apps.get(app["id"]).status == AppStatus.STOPPED

        gone = lab.play(PLAY.format(state="absent"))
        assert gone.recap["changed"] == 1
        with lab.sdk() as px:
            assert px.apps.list() == []
