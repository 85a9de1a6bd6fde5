"""The typed façade over pluggy: the only place that calls hooks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from proximity_sdk.errors import ValidationError
from proximity_sdk.plugins import hookspecs
from proximity_sdk.plugins._builtin import builtin_plugins
from proximity_sdk.plugins.sources import CatalogSource

if TYPE_CHECKING:
    from proximity_sdk.backup_targets.base import BackupTargetKind
    from proximity_sdk.models.app import App
    from proximity_sdk.models.operation import Operation

__all__ = ["ENTRY_POINT_GROUP", "PluginManager"]

ENTRY_POINT_GROUP = "proximity"

log = logging.getLogger(__name__)


class PluginManager:
    """Plugins of one Proximity instance.

    Order: built-in plugins are registered first, then (when ``entry_points`` is true) every
    plugin installed under the ``proximity`` entry-point group, then the hook implementations are
    checked against the specs (`pluggy.PluginManager.check_pending`), so a misspelt hook fails at
    start-up instead of being silently ignored. `register` adds a plugin object later (notebooks,
    tests). ``plugins`` are registered right after the built-ins, before entry points.
    """

    def __init__(self, *, entry_points: bool = True, plugins: tuple[object, ...] = ()) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        for name, plugin in builtin_plugins():
            self._pm.register(plugin, name=name)
        for plugin in plugins:
            self._pm.register(plugin)
        if entry_points:
            count = self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            log.debug("loaded %d plugin(s) from entry points", count)
        self._pm.check_pending()

    def register(self, plugin: object, *, name: str | None = None) -> str:
        """Add a plugin object (a module, class instance, ...); returns its registered name."""
        try:
            registered = self._pm.register(plugin, name=name)
        except ValueError as exc:  # pluggy: already registered / name taken
            raise ValidationError(str(exc), field="plugin", hint="Unregister the other plugin first") from exc
        if registered is None:
            raise ValidationError("this plugin is blocked", field="plugin")
        self._pm.check_pending()
        return registered

    def unregister(self, name: str) -> None:
        """Remove a plugin by its registered name (no-op when unknown)."""
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin=plugin, name=name)

    def names(self) -> list[str]:
        """Registered plugin names, in registration order."""
        return [name for name, _ in self._pm.list_name_plugin()]

    def distributions(self) -> list[tuple[str, str]]:
        """(distribution name, version) of every plugin loaded from an entry point."""
        return [(dist.project_name, dist.version) for _, dist in self._pm.list_plugin_distinfo()]

    @property
    def pluggy(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for tracing and debugging; call hooks via the methods here)."""
        return self._pm

    # typed hook calls ---------------------------------------------------------------------

    def catalog_sources(self) -> list[CatalogSource]:
        """Every plugin's catalog sources, in plugin registration order (built-in first)."""
        # pluggy calls the most recently registered implementation first; reverse to registration order
        results: list[Any] = self._pm.hook.proximity_catalog_sources()
        sources: list[CatalogSource] = []
        for returned in reversed(results):
            for source in returned or ():
                if not isinstance(source, CatalogSource):
                    raise ValidationError(
                        f"a plugin returned {source!r} as a catalog source",
                        field="proximity_catalog_sources",
                        hint="Return objects with name, list_entries() and get_entry()",
                    )
                sources.append(source)
        return sources

    def backup_target_kinds(self) -> dict[str, BackupTargetKind]:
        """Every offered kind of backup target by name; for one name, the plugin registered last wins
        (the built-in ``proxmox`` kind is registered first)."""
        from proximity_sdk.backup_targets.base import BackupTargetKind

        results: list[Any] = self._pm.hook.proximity_backup_target_kinds()
        kinds: dict[str, BackupTargetKind] = {}
        for returned in reversed(results):  # pluggy calls the newest first: back to registration order
            for kind in returned or ():
                if not isinstance(kind, BackupTargetKind) or not isinstance(getattr(kind, "kind", None), str):
                    raise ValidationError(
                        f"a plugin returned {kind!r} as a backup target kind",
                        field="proximity_backup_target_kinds",
                        hint="Return objects with kind, check_options() and open()",
                    )
                kinds[kind.kind] = kind
        return kinds

    def listens_to_operations(self, when: Literal["before", "after", "error"]) -> bool:
        """Whether a registered plugin implements that lifecycle hook (else nothing needs preparing)."""
        return bool(getattr(self._pm.hook, f"proximity_operation_{when}").get_hookimpls())

    def notify_operation(
        self,
        when: Literal["before", "after", "error"],
        *,
        operation: Operation,
        app: App | None,
        error: BaseException | None = None,
    ) -> None:
        """Tell every lifecycle listener about an operation (before it runs, after it succeeded,
        or after it failed and was rolled back)."""
        hook = self._pm.hook
        if when == "before":
            hook.proximity_operation_before(operation=operation, app=app)
        elif when == "after":
            hook.proximity_operation_after(operation=operation, app=app)
        else:
            assert error is not None
            hook.proximity_operation_error(operation=operation, app=app, error=error)
