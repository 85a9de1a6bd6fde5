"""The entry format: the original corpus loads unchanged; broken entries are rejected precisely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.directory import DirectorySource, read_entry_file
from proximity_sdk.catalog.loader import load_entry, load_source
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem
from proximity_sdk.plugins.sources import RawEntry

from .conftest import COMPAT_COUNT


def _minimal(app_id: str = "demo", **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": app_id,
        "name": "Demo",
        "version": "1.0",
        "description": "A demo app",
        "category": "Testing",
        "icon": None,
        "docker_compose": {"services": {"web": {"image": "nginx:1.27", "ports": ["8080:80"]}}},
    }
    entry.update(extra)
    return entry


def test_every_compat_entry_loads_without_loss(compat_dir: Path) -> None:
    result = load_source(DirectorySource(compat_dir), trusted=True)  # host networking: see the policy tests
    assert result.problems == []
    assert len(result.apps) == COMPAT_COUNT
    for app, origin in zip(result.apps, result.origins, strict=True):
        raw = json.loads(Path(origin).read_text())
        # every original field survives as given
        for key in ("id", "name", "version", "description", "category", "icon", "docker_compose"):
            assert getattr(app, key) == raw[key], (origin, key)
        for key in ("tags", "ports", "volumes", "environment", "author", "website", "min_disk"):
            if key in raw:
                assert getattr(app, key) == raw[key], (origin, key)
        assert app.main_service in app.services


def test_index_json_is_not_an_entry(compat_dir: Path) -> None:
    origins = [entry.origin for entry in DirectorySource(compat_dir).list_entries()]
    assert not any(o.endswith("index.json") for o in origins)
    assert len(origins) == COMPAT_COUNT


def test_broken_entry_is_rejected_naming_file_and_field(tmp_path: Path, compat_dir: Path) -> None:
    for name in ("gitea.json", "nextcloud.json", "adminer.json"):
        shutil.copy(compat_dir / name, tmp_path / name)
    broken = json.loads((compat_dir / "redis.json").read_text())
    broken["min_cpu"] = "lots"
    (tmp_path / "redis.json").write_text(json.dumps(broken))
    (tmp_path / "garbage.json").write_text("{not json")

    catalog = Catalog(plugins=_no_plugins(), catalog_paths=[tmp_path])
    assert sorted(app.id for app in catalog.list()) == ["adminer", "gitea", "nextcloud"]
    problems = {Path(p.origin).name: p for p in catalog.errors}
    assert set(problems) == {"redis.json", "garbage.json"}
    assert problems["redis.json"].field == "min_cpu"
    assert problems["redis.json"].app_id == "redis"
    assert str(tmp_path / "redis.json") in str(problems["redis.json"])
    assert "not valid JSON" in problems["garbage.json"].message
    assert catalog.stats().problems == 2


@pytest.mark.parametrize(
    ("field", "value", "expected_field"),
    [
        ("docker_compose", {"services": {}}, "docker_compose"),
        ("docker_compose", {"services": {"web": {"ports": ["80"]}}}, "docker_compose"),
        ("ports", [80, 70000], "ports"),
        ("main_service", "nope", "main_service"),
        ("secrets", [{"name": "A"}, {"name": "A"}], "secrets"),
        ("secrets", [{"name": "HASH", "kind": "sha256", "of": "MISSING"}], "secrets"),
        ("secrets", [{"name": "bad name"}], "secrets.0.name"),
        ("health_path", "no-slash", "health_path"),
        ("os_template", "../../etc/passwd", "os_template"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, expected_field: str) -> None:
    loaded = load_entry(RawEntry("x.json", _minimal(**{field: value})), source="t")
    assert isinstance(loaded, CatalogProblem)
    assert loaded.field == expected_field
    assert loaded.origin == "x.json"


@pytest.mark.parametrize("app_id", ["privateGPT", "changedetection.io", "a", "x" * 63, "n8n", "web_1-2.3"])
def test_valid_ids(app_id: str) -> None:
    assert isinstance(load_entry(RawEntry("f", _minimal(app_id)), source="t"), CatalogApp)


@pytest.mark.parametrize("app_id", ["../etc", "a/b", ".hidden", "", "x" * 64, "-dash", "a b", "a\\b", "é"])
def test_invalid_ids(app_id: str) -> None:
    loaded = load_entry(RawEntry("f", _minimal(app_id)), source="t")
    assert isinstance(loaded, CatalogProblem)
    assert loaded.field == "id"


def test_extra_fields_are_tolerated_and_secret_shorthand() -> None:
    app = CatalogApp.model_validate(_minimal(future_field={"x": 1}, secrets=["DB_PASSWORD"]))
    assert app.secrets[0].name == "DB_PASSWORD"
    assert app.secrets[0].kind == "password"


def test_main_service_and_port_derivation() -> None:
    compose = {
        "services": {
            "db": {"image": "postgres:16"},
            "worker": {"image": "example/app:1"},
            "web": {"image": "example/app:1", "ports": ["127.0.0.1:8443:443/tcp"]},
        }
    }
    app = CatalogApp.model_validate(_minimal(docker_compose=compose))
    assert (app.main_service, app.main_port) == ("web", 8443)
    # without published ports: skip backing services (postgres), take the app
    compose["services"]["web"].pop("ports")
    app = CatalogApp.model_validate(_minimal(docker_compose=compose, ports=[9000]))
    assert (app.main_service, app.main_port) == ("worker", 9000)
    # explicit values win
    app = CatalogApp.model_validate(_minimal(docker_compose=compose, main_service="web", main_port=81))
    assert (app.main_service, app.main_port) == ("web", 81)


def test_non_object_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    entry = read_entry_file(path)
    assert entry.data is None
    assert entry.problem is not None
    assert "one JSON object" in entry.problem


def _no_plugins():  # type: ignore[no-untyped-def]
    from .conftest import _EmptyPlugins

    return _EmptyPlugins()
