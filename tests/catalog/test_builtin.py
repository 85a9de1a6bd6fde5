"""The shipped catalog: every entry is complete, deployable and free of literal secrets."""

from __future__ import annotations

import json
import re

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.render import render_project
from proximity_sdk.catalog.secrets import is_secret_name, is_secret_value
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.plugins._builtin import BUILTIN_CATALOG_DIR
from proximity_sdk.plugins.manager import PluginManager

_BUILTIN = Catalog(plugins=PluginManager(entry_points=False))
_APPS = _BUILTIN.list()
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def test_at_least_sixty_apps_all_loaded() -> None:
    files = list(BUILTIN_CATALOG_DIR.glob("*.json"))
    assert len(files) >= 60
    assert _BUILTIN.errors == []
    assert len(_APPS) == len(files)
    for path in files:  # file name is the id, so get_entry's fast path applies
        assert json.loads(path.read_text())["id"] == path.stem


@pytest.mark.parametrize("app", _APPS, ids=lambda a: a.id)
def test_builtin_entry_is_deployable(app: CatalogApp) -> None:
    raw = json.loads((BUILTIN_CATALOG_DIR / f"{app.id}.json").read_text())
    # our fields are written explicitly, not derived
    assert raw["main_service"] == app.main_service
    assert app.main_service in app.services
    assert raw["main_port"] == app.main_port
    assert app.main_port in app.ports
    assert app.min_memory >= 64
    assert app.min_cpu >= 1
    assert app.min_disk
    assert app.os_template
    assert app.health_path is None or app.health_path.startswith("/")
    for image in app.images:
        name = image.rsplit("/", 1)[-1]
        assert ":" in name, f"{app.id}: image {image} has no tag"
        assert not name.endswith(":"), f"{app.id}: image {image} has an empty tag"
    declared = {s.name for s in app.secrets}
    text = json.dumps(app.docker_compose)
    referenced = set(_REF.findall(text))
    assert referenced == declared, f"{app.id}: referenced {referenced} vs declared {declared}"
    for service in app.services.values():
        for name, value in (service.get("environment") or {}).items():
            if is_secret_name(name) and value is not None:
                assert not is_secret_value(value), f"{app.id}: {name} holds a literal"
    main = app.services[app.main_service or ""]
    published = {int(str(p).split("/")[0].split(":")[-2]) for p in main.get("ports", []) if ":" in str(p)}
    assert app.main_port in published or main.get("network_mode") == "host"
    # named volumes are declared at the top level
    for service in app.services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("/"):
                assert source in app.docker_compose.get("volumes", {}), f"{app.id}: volume {source}"
    for dep in (d for s in app.services.values() for d in s.get("depends_on", [])):
        assert dep in app.services
    project = render_project(app)
    assert set(project.env) == declared | {s.of for s in app.secrets if s.of}
    for value in project.env.values():
        assert value not in project.compose_text()


def test_descriptions_are_our_own(compat_dir) -> None:  # type: ignore[no-untyped-def]
    corpus = {json.loads(p.read_text()).get("description") for p in compat_dir.glob("*.json") if p.name != "index.json"}
    copied = [app.id for app in _APPS if app.description in corpus]
    assert copied == []


def test_builtin_categories_cover_the_usual_needs() -> None:
    assert {"Database", "DevOps", "Media", "Monitoring", "Productivity", "Security", "Storage"} <= set(
        _BUILTIN.categories()
    )
