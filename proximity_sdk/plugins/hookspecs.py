"""The hooks a Proximity plugin can implement (pluggy project ``proximity``).

A plugin is any object or module with functions decorated by `hookimpl` and named like a spec
below. Installed distributions expose plugins through the ``proximity`` entry-point group::

    [project.entry-points.proximity]
    myplugin = "my_package.plugin"

Hooks are never called directly: the typed `PluginManager` façade calls them. New kinds of hooks
(backup targets, lifecycle listeners) are added here as further specs, each with a typed method on
the façade and a section in docs/plugins.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from proximity_sdk.backup_targets.base import BackupTargetKind
    from proximity_sdk.models.app import App
    from proximity_sdk.models.operation import Operation
    from proximity_sdk.plugins.sources import CatalogSource

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "proximity_backup_target_kinds",
    "proximity_catalog_sources",
    "proximity_operation_after",
    "proximity_operation_before",
    "proximity_operation_error",
]

PROJECT_NAME = "proximity"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def proximity_catalog_sources() -> list[CatalogSource]:  # type: ignore[empty-body]
    """Return the catalog sources this plugin provides (collected from every plugin).

    Called on every catalog (re)load, so a plugin may read its configuration each time. Return an
    empty list when the plugin is installed but not configured. Each source must satisfy
    `proximity_sdk.plugins.CatalogSource` (``name``, ``list_entries()``, ``get_entry(app_id)``).
    Sources from plugins registered later override earlier ones for the same app id; the
    built-in catalog is registered first, and ``catalog_paths`` directories override all plugins.
    """


@hookspec
def proximity_operation_before(operation: Operation, app: App | None) -> None:
    """A lifecycle listener: an operation (deploy, start, stop, restart, delete, ...) is about to run.

    ``operation.kind`` names it; ``app`` is the app it acts on as recorded now (``None`` before a
    deploy has created the record), with its ``address`` and ``ports``. Called in the worker
    thread of the operation, so keep it short; an exception is logged and never stops the operation.
    """


@hookspec
def proximity_operation_after(operation: Operation, app: App | None) -> None:
    """A lifecycle listener: an operation succeeded. ``app`` is the app as it is now: after a
    deploy it is ``running`` with its ``address``, ``url`` and ``ports`` (where a DNS, reverse-proxy
    or port-publishing plugin acts); after a delete it is ``None``."""


@hookspec
def proximity_operation_error(operation: Operation, app: App | None, error: BaseException) -> None:
    """A lifecycle listener: an operation failed or was cancelled, after its rollback. ``operation``
    carries ``error`` and ``result["failed_step"]``; ``error`` is the exception that stopped it."""


@hookspec
def proximity_backup_target_kinds() -> list[BackupTargetKind]:  # type: ignore[empty-body]
    """Return the kinds of backup target this plugin offers (collected from every plugin).

    Each must satisfy `proximity_sdk.backup_targets.BackupTargetKind`: a ``kind`` name (``sftp``),
    ``check_options(options)`` (validates what ``px.backups.targets.add(name=, kind=, options=)``
    was given, raising ``ValidationError``; the result is stored encrypted) and
    ``open(name, options)`` returning a `BackupTarget` (``dump_storage``, ``store``, ``fetch``,
    ``verify``, ``delete``, ``list``). The built-in kind ``proxmox`` (a Proxmox storage) is
    registered first; a later plugin offering the same kind name replaces it.
    """
