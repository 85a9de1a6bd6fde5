"""App updates with a safety net: a newer catalog version or new digests of floating tags, a safety
backup first, and on any failure the app restored to its exact prior state (fakepve's container config,
the files in the stand-in container, the app's record)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError as PydanticValidationError

from proximity_sdk._client import Proximity
from proximity_sdk.errors import ConflictError, OperationFailed, ValidationError
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.models.update import UpdateWindow
from proximity_sdk.operations.update import floating, newer_version
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.harness.sshd import StandinState

LISTENING = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"
WEB = "ghcr.io/example/notes-web"
DB = "postgres"


def _entry(version: str, web_tag: str, *, extra_secret: bool = False) -> dict[str, Any]:
    environment = {"DB_PASSWORD": "${DB_PASSWORD}", "GREETING": "hello"}
    secrets = [{"name": "DB_PASSWORD"}]
    if extra_secret:
        environment["SESSION_SECRET"] = "${SESSION_SECRET}"
        secrets.append({"name": "SESSION_SECRET", "kind": "hex"})
    return {
        "id": "notes",
        "name": "Notes",
        "version": version,
        "description": "notes",
        "category": "Productivity",
        "docker_compose": {
            "services": {
                "web": {"image": f"{WEB}:{web_tag}", "ports": ["3000:3000"], "environment": environment},
                "db": {"image": f"{DB}:16", "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}},
            }
        },
        "ports": [3000],
        "main_service": "web",
        "main_port": 3000,
        "os_template": "debian-12-standard",
        "secrets": secrets,
    }


class Lab:
    def __init__(self, px: Proximity, pve: HarnessPve, standins: StandinState, catalog: Path) -> None:
        self.px, self.pve, self.standins, self.catalog = px, pve, standins, catalog

    def publish_catalog(self, entry: dict[str, Any]) -> None:
        (self.catalog / "notes.json").write_text(json.dumps(entry))
        self.px.catalog.reload()

    def publish_image(self, reference: str, digest: str) -> None:
        registry = self.standins.path / "registry.json"
        published = json.loads(registry.read_text()) if registry.exists() else {}
        published[reference] = digest
        registry.write_text(json.dumps(published))

    def files(self, app: App) -> Path:
        return self.standins.path / "ct" / str(app.vmid)

    def compose(self, app: App) -> dict[str, Any]:
        return json.loads((self.files(app) / "opt" / "proximity" / app.hostname / "compose.yaml").read_text())

    def config(self, app: App) -> dict[str, Any]:
        ct = self.pve.ct(app.vmid)
        assert ct is not None
        return {k: v for k, v in ct.config.items() if k != "lock"}


@pytest.fixture
def lab(
    tmp_path: Path, pve: HarnessPve, pve_ca: str, ssh_access: SshAccess, standin_state: StandinState
) -> Iterator[Lab]:
    standin_state.script("ss", stdout=LISTENING.format(port=3000))
    # backups hold the stand-in container's files, as a vzdump holds the root filesystem
    pve.container_files = lambda vmid: standin_state.path / "ct" / str(vmid)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "notes.json").write_text(json.dumps(_entry("1.0", "1.0.0")))
    with Proximity.local(
        data_dir=tmp_path / "px",
        secret_key=Fernet.generate_key(),
        entry_points=False,
        catalog_paths=[catalog],
        lease_seconds=5,
    ) as px:
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=pve_ca, ssh=ssh_access)
        px.settings.update(health_timeout_seconds=2)
        yield Lab(px, pve, standin_state, catalog)


def _deploy(lab: Lab) -> App:
    app: App = lab.px.apps.deploy("notes", hostname="notes", environment={"GREETING": "bonjour"}).wait(timeout=60)
    return app


def test_version_and_tag_rules() -> None:
    assert floating("nginx") and floating("nginx:latest") and floating("ghcr.io/a/b:main")
    assert floating("registry:5000/team/app") and not floating("registry:5000/team/app:1.2")
    assert not floating("postgres:16") and not floating("redis@sha256:" + "a" * 64)
    assert newer_version("1.10", "1.9") and not newer_version("1.9", "1.10") and not newer_version("2.0", "2.0")
    assert newer_version("2.0", None) and not newer_version(None, "1.0")


def test_deploy_records_the_version_and_the_digest_of_every_image(lab: Lab) -> None:
    app = _deploy(lab)
    assert app.catalog_version == "1.0"
    digests = app.config["images"]
    assert set(digests) == {f"{WEB}:1.0.0", f"{DB}:16"}
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests.values())
    assert lab.px.apps.updates() == []


def test_a_newer_catalog_version_updates_with_secrets_and_settings_carried_over(lab: Lab) -> None:
    app = _deploy(lab)
    secrets_before = lab.px.apps.credentials(app.id).secrets
    lab.publish_catalog(_entry("1.1", "1.1.0", extra_secret=True))

    [found] = lab.px.apps.updates()
    assert (found.app_id, found.current_version, found.available_version) == (app.id, "1.0", "1.1")

    op = lab.px.apps.update(app.id)
    events = list(op.events())
    updated = op.wait(timeout=60)
    done = [e.step for e in events if e.message.endswith(": done")]
    assert done == ["check", "safety", "project", "pull", "recreate", "health", "record"]
    assert updated.status == AppStatus.RUNNING and updated.catalog_version == "1.1"
    assert updated.vmid == app.vmid and updated.ports == app.ports
    assert updated.config["images"][f"{WEB}:1.1.0"].startswith("sha256:")
    compose = lab.compose(updated)
    assert compose["services"]["web"]["image"] == f"{WEB}:1.1.0"
    assert compose["services"]["web"]["environment"]["GREETING"] == "bonjour"  # the deploy's setting
    secrets_after = lab.px.apps.credentials(app.id).secrets
    assert secrets_after["DB_PASSWORD"] == secrets_before["DB_PASSWORD"]  # the database keeps its password
    assert "SESSION_SECRET" in secrets_after and "SESSION_SECRET" not in secrets_before
    # the safety backup is kept, and says what it guarded
    [safety] = lab.px.backups.list(app.id)
    assert safety.status.value == "completed" and op.id in (safety.note or "")
    assert lab.px.apps.updates() == []


def test_a_floating_tag_with_a_new_digest_is_found_after_a_pull_and_updated(lab: Lab) -> None:
    lab.publish_catalog(_entry("1.0", "latest"))
    app = _deploy(lab)
    before = app.config["images"][f"{WEB}:latest"]
    assert lab.px.apps.updates() == []  # the registry still serves what runs

    lab.publish_image(f"{WEB}:latest", "sha256:" + "b" * 64)
    [found] = lab.px.apps.updates()
    assert found.available_version is None
    assert [(i.image, i.current_digest, i.available_digest) for i in found.images] == [
        (f"{WEB}:latest", before, "sha256:" + "b" * 64)
    ]

    updated = lab.px.apps.update(app.id).wait(timeout=60)
    assert updated.config["images"][f"{WEB}:latest"] == "sha256:" + "b" * 64
    assert updated.catalog_version == "1.0"
    assert lab.px.apps.updates() == []


def test_a_failed_health_check_restores_the_exact_prior_state(lab: Lab) -> None:
    lab.publish_catalog(_entry("1.0", "latest"))
    app = _deploy(lab)
    record_before = lab.px.apps.get(app.id)
    config_before, compose_before = lab.config(app), lab.compose(app)
    pulled_before = (lab.files(app) / "var" / "lib" / "docker" / "standin-images.json").read_text()

    lab.publish_catalog(_entry("2.0", "latest", extra_secret=True))
    lab.publish_image(f"{WEB}:latest", "sha256:" + "c" * 64)
    # the new version never listens: the 2 checks of the update fail, the one after the restore passes
    rules = lab.standins.path / "rules" / "ss.json"
    rules.write_text(
        json.dumps(
            [{"match": None, "times": 2, "stdout": "", "stderr": "", "exit_code": 0}, *json.loads(rules.read_text())]
        )
    )

    op = lab.px.apps.update(app.id)
    events = list(op.events())
    with pytest.raises(OperationFailed) as failed:
        op.wait(timeout=60)
    assert failed.value.step == "health"
    story = [e.message for e in events]
    assert any("unhealthy after 2 checks: port 3000 refuses connections" in m for m in story)
    assert any(m.startswith("restoring the safety backup") for m in story)
    assert any("is back as it was before the update" in m for m in story)

    after = lab.px.apps.get(app.id)
    assert after.status == AppStatus.RUNNING
    assert after.model_dump(exclude={"updated_at", "status_changed_at"}) == record_before.model_dump(
        exclude={"updated_at", "status_changed_at"}
    )
    assert lab.config(after) == config_before  # fakepve: the container's config as it was
    assert lab.compose(after) == compose_before  # the compose project in the container as recorded
    assert (lab.files(after) / "var" / "lib" / "docker" / "standin-images.json").read_text() == pulled_before
    assert "SESSION_SECRET" not in lab.px.apps.credentials(app.id).secrets  # nothing of 2.0 was kept
    [safety] = lab.px.backups.list(app.id)
    assert safety.status.value == "completed"


def test_bad_requests_are_refused_before_anything_runs(lab: Lab) -> None:
    app = _deploy(lab)
    with pytest.raises(ValidationError) as bad:
        lab.px.apps.update(app.id, version="9.9")
    assert bad.value.field == "version" and "1.0" in str(bad.value)
    lab.px.apps.stop(app.id).wait(timeout=60)
    with pytest.raises(ConflictError):
        lab.px.apps.update(app.id)
    assert lab.px.operations.list(app_id=app.id)[0].kind == "stop"  # no update was recorded
    assert lab.px.backups.list(app.id) == []


def test_update_windows_open_on_their_days_and_across_midnight() -> None:
    window = UpdateWindow(days=("sun", "sat", "sat"), start="23:30", minutes=60)
    assert window.days == ("sat", "sun")
    saturday = datetime(2026, 11, 28, 23, 45, tzinfo=UTC)
    assert window.opened_at(saturday) == datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert window.opened_at(saturday + timedelta(minutes=30)) == datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert window.opened_at(saturday + timedelta(minutes=45)) is None  # closed at 00:30 on Sunday
    assert window.opened_at(saturday - timedelta(days=1)) is None  # Friday
    for bad in (
        {"start": "24:00"},
        {"start": "3:00"},
        {"start": "03:00", "minutes": 5},
        {"start": "03:00", "days": ()},
        {"start": "03:00", "days": ("someday",)},
    ):
        with pytest.raises(PydanticValidationError):
            UpdateWindow.model_validate(bad)


def test_automatic_updates_act_once_per_open_window(lab: Lab) -> None:
    app = _deploy(lab)
    window = UpdateWindow(start="03:00", minutes=60)
    assert lab.px.apps.update_window(app.id) is None
    assert lab.px.apps.set_update_window(app.id, window=window) == window
    assert lab.px.apps.update_window(app.id) == window
    inside = datetime(2026, 12, 1, 3, 10, tzinfo=UTC)

    assert lab.px.apps.run_due_updates(now=inside) == []  # nothing newer: the window is used up all the same
    lab.publish_catalog(_entry("1.1", "1.1.0"))
    assert lab.px.apps.run_due_updates(now=inside + timedelta(minutes=5)) == []  # same window: once
    assert lab.px.apps.run_due_updates(now=inside + timedelta(hours=2)) == []  # closed

    [op] = lab.px.apps.run_due_updates(now=inside + timedelta(days=1))  # the next window
    assert op.wait(timeout=60).catalog_version == "1.1"
    assert lab.px.apps.run_due_updates(now=inside + timedelta(days=1, minutes=10)) == []

    assert lab.px.apps.set_update_window(app.id, window=None) is None
    lab.publish_catalog(_entry("1.2", "1.2.0"))
    assert lab.px.apps.run_due_updates(now=inside + timedelta(days=2)) == []
    with pytest.raises(ValidationError) as naive:
        lab.px.apps.run_due_updates(now=datetime(2026, 12, 1, 3, 10))
    assert naive.value.field == "now"
