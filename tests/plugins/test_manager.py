"""The pluggy layer: specs are documented, built-ins come first, plugins can be added at run time."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.errors import ValidationError
from proximity_sdk.plugins import CatalogSource, RawEntry, hookimpl, hookspecs
from proximity_sdk.plugins.manager import PluginManager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _specs() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("proximity_") and hasattr(fn, "proximity_spec")
    ]


def test_every_hookspec_has_a_docstring_and_is_documented() -> None:
    specs = _specs()
    assert "proximity_catalog_sources" in specs
    docs = DOCS.read_text()
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc, name
        assert len(doc) > 40, name
        assert f"`{name}" in docs, f"{name} is not described in docs/plugins.md"


def test_every_spec_is_registered_with_the_manager() -> None:
    pm = PluginManager(entry_points=False)
    assert set(_specs()) <= {name for name in dir(pm.pluggy.hook) if name.startswith("proximity_")}


class _MemorySource:
    def __init__(self, name: str, entries: list[dict[str, object]]) -> None:
        self._name = name
        self._entries = entries

    @property
    def name(self) -> str:
        return self._name

    def list_entries(self) -> Iterator[RawEntry]:
        for n, data in enumerate(self._entries):
            yield RawEntry(f"memory:{self._name}#{n}", data)

    def get_entry(self, app_id: str) -> RawEntry | None:
        return next((e for e in self.list_entries() if e.data and e.data.get("id") == app_id), None)


def _entry(app_id: str, name: str) -> dict[str, object]:
    return {
        "id": app_id, "name": name, "version": "1", "description": "from a plugin", "category": "Plugin",
        "docker_compose": {"services": {"app": {"image": "example/app:1", "ports": ["80:80"]}}},
    }  # fmt: skip


class _Plugin:
    def __init__(self, source: CatalogSource) -> None:
        self.source = source

    @hookimpl
    def proximity_catalog_sources(self) -> list[CatalogSource]:
        return [self.source]


def test_builtin_first_then_registered_plugins_in_order() -> None:
    pm = PluginManager(entry_points=False)
    pm.register(_Plugin(_MemorySource("one", [_entry("gitea", "Gitea from one")])), name="one")
    pm.register(_Plugin(_MemorySource("two", [_entry("gitea", "Gitea from two")])), name="two")
    names = [s.name for s in pm.catalog_sources()]
    assert names == ["builtin", "one", "two"]
    catalog = Catalog(plugins=pm)
    assert catalog.get("gitea").name == "Gitea from two"
    assert [(s.shadowed_source, s.kept_source) for s in catalog.shadowed if s.app_id == "gitea"] == [
        ("builtin", "one"),
        ("one", "two"),
    ]
    pm.unregister("two")
    assert catalog.reload().by_source["one"] == 1
    assert catalog.get("gitea").name == "Gitea from one"


def test_registering_twice_and_bad_sources_are_refused() -> None:
    pm = PluginManager(entry_points=False)
    plugin = _Plugin(_MemorySource("x", []))
    pm.register(plugin, name="x")
    with pytest.raises(ValidationError):
        pm.register(plugin, name="x")

    class Bad:
        @hookimpl
        def proximity_catalog_sources(self) -> list[object]:
            return ["not a source"]

    pm.register(Bad(), name="bad")
    with pytest.raises(ValidationError) as info:
        pm.catalog_sources()
    assert info.value.field == "proximity_catalog_sources"


def test_misspelt_hook_fails_at_registration() -> None:
    class Typo:
        @hookimpl
        def proximity_catalog_source(self) -> list[object]:  # missing "s"
            return []

    pm = PluginManager(entry_points=False)
    with pytest.raises(Exception, match="unknown hook"):
        pm.register(Typo(), name="typo")


def test_a_failing_source_becomes_one_problem() -> None:
    class Exploding(_MemorySource):
        def list_entries(self) -> Iterator[RawEntry]:
            raise RuntimeError("remote down")

    pm = PluginManager(entry_points=False, plugins=(_Plugin(Exploding("boom", [])),))
    catalog = Catalog(plugins=pm)
    assert len(catalog) >= 60  # the built-in catalog is still there
    [problem] = catalog.errors
    assert problem.source == "boom"
    # members list problems: the error's own text (it may quote what the source read) stays in the log
    assert "RuntimeError" in problem.message
    assert "remote down" not in problem.message
