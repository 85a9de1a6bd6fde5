"""Catalog queries: list, search ranking, get with hints, categories, stats, reload, precedence."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.errors import NotFoundError, ValidationError
from proximity_sdk.plugins.manager import PluginManager

from .conftest import COMPAT_COUNT


def _write(directory: Path, app_id: str, **fields: object) -> Path:
    entry: dict[str, object] = {
        "id": app_id,
        "name": fields.pop("name", app_id.title()),
        "version": "1",
        "description": fields.pop("description", f"{app_id} app"),
        "category": fields.pop("category", "Testing"),
        "icon": None,
        "docker_compose": {"services": {app_id: {"image": f"example/{app_id}:1", "ports": ["8080:80"]}}},
    }
    entry.update(fields)
    path = directory / f"{app_id}.json"
    path.write_text(json.dumps(entry))
    return path


def test_list_sorted_by_name_and_filtered_by_category(compat_catalog: Catalog) -> None:
    apps = compat_catalog.list()
    assert len(apps) == COMPAT_COUNT
    names = [a.name.lower() for a in apps]
    assert names == sorted(names)
    media = compat_catalog.list(category="media")  # case-insensitive
    assert media
    assert all(a.category == "Media" for a in media)
    assert compat_catalog.list(category="no such category") == []


def test_categories_and_stats(compat_catalog: Catalog) -> None:
    categories = compat_catalog.categories()
    assert categories == sorted(set(categories), key=str.lower)
    assert {"Media", "DevOps", "Database"} <= set(categories)
    stats = compat_catalog.stats()
    assert stats.total_apps == COMPAT_COUNT
    assert stats.total_categories == len(categories)
    assert sum(stats.by_category.values()) == COMPAT_COUNT
    assert stats.by_source == {"compat": COMPAT_COUNT}
    assert stats.problems == 0


def test_search_ranks_name_and_id_first(compat_catalog: Catalog) -> None:
    results = [a.id for a in compat_catalog.search("git")]
    assert results[:2] == ["gitea", "gitlab"]  # name prefix beats tag/description mentions
    assert set(results) >= {"gitea", "gitlab"}
    assert all(
        "git" in (a.name + a.id + a.description + " ".join(a.tags) + a.category).lower()
        for a in compat_catalog.search("git")
    )


def test_search_all_terms_must_match_and_tags_count(compat_catalog: Catalog) -> None:
    both = compat_catalog.search("media server")
    assert both
    for app in both:
        text = (app.name + app.id + app.description + " ".join(app.tags) + app.category).lower()
        assert "media" in text
        assert "server" in text
    assert compat_catalog.search("zzzz-nothing") == []
    assert len(compat_catalog.search("   ")) == COMPAT_COUNT
    exact = compat_catalog.search("Jellyfin")
    assert exact[0].id == "jellyfin"


def test_get_and_near_match_hint(compat_catalog: Catalog) -> None:
    assert compat_catalog.get("privateGPT").name
    assert compat_catalog.get("changedetection.io").id == "changedetection.io"
    with pytest.raises(NotFoundError) as info:
        compat_catalog.get("gittea")
    assert "gitea" in info.value.hint
    with pytest.raises(NotFoundError) as info:
        compat_catalog.get("privategpt")  # case differs: suggest the real id
    assert "privateGPT" in info.value.hint
    assert "gitea" in compat_catalog
    assert "nope" not in compat_catalog


def test_reload_picks_up_new_and_changed_files(tmp_path: Path) -> None:
    _write(tmp_path, "alpha")
    catalog = Catalog(plugins=PluginManager(entry_points=False), catalog_paths=[tmp_path])
    before = catalog.stats().total_apps
    assert "beta" not in catalog
    _write(tmp_path, "beta", description="brand new")
    assert "beta" not in catalog  # nothing changes until reload
    stats = catalog.reload()
    assert stats.total_apps == before + 1
    assert catalog.get("beta").description == "brand new"
    (tmp_path / "beta.json").unlink()
    catalog.reload()
    assert "beta" not in catalog


def test_user_paths_override_builtin_and_report_shadowing(tmp_path: Path) -> None:
    _write(tmp_path, "gitea", name="My Gitea")
    catalog = Catalog(plugins=PluginManager(entry_points=False), catalog_paths=[tmp_path])
    assert catalog.get("gitea").name == "My Gitea"
    assert catalog.origin("gitea") == str(tmp_path / "gitea.json")
    [shadow] = [s for s in catalog.shadowed if s.app_id == "gitea"]
    assert shadow.kept_source == f"path:{tmp_path}"
    assert shadow.shadowed_source == "builtin"
    assert catalog.stats().shadowed == 1


def test_later_paths_override_earlier(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    _write(first, "same", name="First")
    _write(second, "same", name="Second")
    catalog = Catalog(plugins=PluginManager(entry_points=False), catalog_paths=[first, second])
    assert catalog.get("same").name == "Second"


def test_missing_catalog_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Catalog(catalog_paths=[tmp_path / "missing"])
    assert info.value.field == "catalog_paths"


def test_concurrent_first_use_loads_once(tmp_path: Path) -> None:
    _write(tmp_path, "alpha")
    calls: list[int] = []

    class CountingPlugins(PluginManager):
        def catalog_sources(self):  # type: ignore[no-untyped-def]
            calls.append(1)
            return super().catalog_sources()

    catalog = Catalog(plugins=CountingPlugins(entry_points=False), catalog_paths=[tmp_path])
    threads = [threading.Thread(target=catalog.list) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert "alpha" in catalog
