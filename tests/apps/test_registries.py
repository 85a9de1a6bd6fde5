"""Registry settings of a host: validated, encrypted at rest, never shown, and written into each
app container's Docker configuration by ``pct push`` (no secret in any argv) before dockerd reads it."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from sqlalchemy import select

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ValidationError
from proximity_sdk.store.tables import HostRow
from tests.harness.sshd import StandinState

TOKEN = "reg-PLAINTEXT-token-7f3a"
CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def _set(lab: Proximity) -> None:
    lab.hosts.set_registries(
        "lab",
        mirrors=["https://mirror.lan:5000"],
        insecure=["10.0.3.1:5000"],
        cas={"reg.lan:5443": CA},
        credentials=[{"registry": "reg.lan:5443", "username": "ci", "password": TOKEN}],
    )


def test_bad_settings_are_refused_naming_the_field(lab: Proximity) -> None:
    for fields, says in (
        ({"insecure": ["http://10.0.3.1:5000"]}, "without scheme or path"),
        ({"mirrors": ["mirror.lan"]}, "not a registry URL"),
        ({"cas": {"reg.lan": "not a pem"}}, "not a PEM certificate"),
        ({"credentials": [{"registry": "reg.lan", "username": "a", "password": ""}]}, "1 to 4096"),
        (
            {
                "credentials": [
                    {"registry": "r.lan", "username": "a", "password": "x"},
                    {"registry": "r.lan", "username": "b", "password": "y"},
                ]
            },
            "one login per registry",
        ),
    ):
        with pytest.raises(ValidationError, match=says):
            lab.hosts.set_registries("lab", **fields)  # type: ignore[arg-type]
    assert lab.hosts.registries("lab").empty


def test_credentials_are_encrypted_at_rest_and_never_shown(lab: Proximity) -> None:
    _set(lab)
    with lab.store.session() as s:
        stored = s.execute(select(HostRow.registries)).scalar_one()
    assert stored is not None and TOKEN not in stored and "reg.lan" not in stored
    settings = lab.hosts.registries("lab")
    assert settings.insecure == ["10.0.3.1:5000"] and settings.mirrors == ["https://mirror.lan:5000"]
    assert settings.credentials[0].password.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    assert TOKEN not in repr(lab.hosts.list()) and TOKEN not in lab.hosts.get("lab").model_dump_json()
    lab.hosts.set_registries("lab")  # nothing given: back to Docker's defaults
    assert lab.hosts.registries("lab").empty


def test_a_deploy_writes_them_into_the_container_before_docker_reads_them(
    lab: Proximity, standin_state: StandinState
) -> None:
    _set(lab)
    app = lab.apps.deploy("gitea", hostname="git-1").wait(timeout=60)
    root = standin_state.path / "ct" / str(app.vmid)
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    assert daemon == {"registry-mirrors": ["https://mirror.lan:5000"], "insecure-registries": ["10.0.3.1:5000"]}
    assert (root / "etc/docker/certs.d/reg.lan:5443/ca.crt").read_text() == CA
    config = root / "root/.docker/config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    auth = json.loads(config.read_text())["auths"]["reg.lan:5443"]["auth"]
    assert base64.b64decode(auth).decode() == f"ci:{TOKEN}"
    # the secret went through stdin of `pct push`, never on a command line
    for call in standin_state.calls():
        assert not any(TOKEN.encode() in arg or auth.encode() in arg for arg in call.argv)
    # written before the project (and before the docker step starts dockerd)
    pushes = [c for c in standin_state.calls("pct") if c.argv[:1] == (b"push",)]
    pushed = [c.argv[3].decode() for c in pushes]
    assert pushed.index("/etc/docker/daemon.json") < pushed.index("/opt/proximity/git-1/compose.yaml")
