"""Issue 15: secrets out of every repr, argv and log; a readable key file refused by the SDK too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.render import render_project
from proximity_sdk.errors import SecretKeyError
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.store.crypto import KEY_FILE_NAME
from tests.ansible.conftest import AnsibleLab, ansible_lab
from tests.cli.conftest import Cli, cli

__all__ = ["ansible_lab", "cli"]

SECRET = "hunter2-s3cret-5a9e"


def test_a_rendered_project_keeps_its_secrets_out_of_its_repr() -> None:
    catalog = Catalog(plugins=PluginManager(entry_points=False))
    project = render_project(catalog.get("gitea"), secrets={"DB_PASSWORD": SECRET})
    assert project.env["DB_PASSWORD"] == SECRET
    for text in (repr(project), str(project), f"{project!r}"):
        assert SECRET not in text
        assert "DB_PASSWORD" in text  # the names say what is there


def test_the_cli_takes_no_value_on_the_command_line(cli: Cli, tmp_path: Path) -> None:
    refused = cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--env", f"ADMIN_PASSWORD={SECRET}")
    assert "not taken on the command line" in refused.stderr
    assert "--env ADMIN_PASSWORD" in refused.stderr and "--env-file" in refused.stderr
    assert SECRET not in refused.stderr + refused.stdout

    # the value from the environment, the name on the command line: accepted (it then needs a host)
    taken = cli.fails(
        3, "apps", "deploy", "gitea", "--hostname", "a", "--env", "ADMIN_PASSWORD", env={"ADMIN_PASSWORD": SECRET}
    )
    assert "no host registered yet" in taken.stderr
    missing = cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--env", "NOT_SET_ANYWHERE")
    assert "no variable NOT_SET_ANYWHERE" in missing.stderr

    env_file = tmp_path / "app.env"
    env_file.write_text(f"# settings\nADMIN_PASSWORD={SECRET}\n")
    assert (
        "no host registered yet"
        in cli.fails(3, "apps", "deploy", "gitea", "--hostname", "a", "--env-file", str(env_file)).stderr
    )
    assert (
        "no host registered yet"
        in cli.fails(
            3, "apps", "deploy", "gitea", "--hostname", "a", "--env-file", "-", stdin=f"ADMIN_PASSWORD={SECRET}\n"
        ).stderr
    )
    broken = cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--env-file", "-", stdin="just words\n")
    assert "line 1: expected NAME=VALUE" in broken.stderr


def test_the_sdk_refuses_a_key_file_others_can_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROXIMITY_SECRET_KEY", raising=False)
    data = tmp_path / "px"
    with Proximity.local(data_dir=data, entry_points=False):
        pass  # creates the database and its 0600 key file
    key_file = data / KEY_FILE_NAME
    assert (key_file.stat().st_mode & 0o777) == 0o600
    os.chmod(key_file, 0o644)
    with pytest.raises(SecretKeyError, match="readable or writable by others") as refused:
        Proximity.local(data_dir=data, entry_points=False)
    assert f"chmod 600 {key_file}" in (refused.value.hint or "")
    os.chmod(key_file, 0o600)
    with Proximity.local(data_dir=data, entry_points=False):
        pass
    assert Fernet(key_file.read_bytes().split()[0])  # the key itself was never touched


@pytest.mark.timeout(600)
def test_ansible_never_logs_the_environment(ansible_lab: AnsibleLab) -> None:
    play = f"""
- name: wiki
  proximity.core.app:
    name: wiki
    catalog_id: gitea
    host: lab
    environment:
      GITEA_SETTING: "{SECRET}"
"""
    run = ansible_lab.play(play, "--check", "-vvv")
    assert run.rc == 0, run
    assert SECRET not in run.stdout + run.stderr
    assert "environment" in run.stdout  # the invocation is logged, its value masked
