"""Proximity: self-hosted apps on Proxmox VE.

Every public name is re-exported here and imported lazily, so ``import proximity_sdk`` stays cheap;
the heavy parts (pydantic, SQLAlchemy, proxmoxer, paramiko) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AlreadyExistsError": "proximity_sdk.errors",
    "App": "proximity_sdk.models.app",
    "AppCredentials": "proximity_sdk.models.app",
    "AppStatus": "proximity_sdk.models.app",
    "AppUsage": "proximity_sdk.models.maintenance",
    "AppsAPI": "proximity_sdk._api.apps",
    "AuthenticationError": "proximity_sdk.errors",
    "Backup": "proximity_sdk.models.backup",
    "BackupSchedule": "proximity_sdk.models.backup",
    "BackupStats": "proximity_sdk.models.backup",
    "BackupStatus": "proximity_sdk.models.backup",
    "BackupTarget": "proximity_sdk.models.backup",
    "BackupTargetsAPI": "proximity_sdk._api.backups",
    "BackupsAPI": "proximity_sdk._api.backups",
    "BusyError": "proximity_sdk.errors",
    "CatalogAPI": "proximity_sdk._api.catalog",
    "CatalogApp": "proximity_sdk.models.catalog",
    "CatalogStats": "proximity_sdk.models.catalog",
    "CommandFailedError": "proximity_sdk.errors",
    "CommandTimeoutError": "proximity_sdk.errors",
    "ConflictError": "proximity_sdk.errors",
    "DiscoveredContainer": "proximity_sdk.models.discovered",
    "Host": "proximity_sdk.models.host",
    "HostCheck": "proximity_sdk.models.host_check",
    "HostKeyError": "proximity_sdk.errors",
    "HostsAPI": "proximity_sdk._api.hosts",
    "InvalidParameterError": "proximity_sdk.errors",
    "JanitorReport": "proximity_sdk.models.maintenance",
    "LockedError": "proximity_sdk.errors",
    "MaintenanceAPI": "proximity_sdk._api.maintenance",
    "Node": "proximity_sdk.models.host",
    "NodeShellError": "proximity_sdk.errors",
    "NodeSyncReport": "proximity_sdk.models.maintenance",
    "NodesAPI": "proximity_sdk._api.hosts",
    "NotFoundError": "proximity_sdk.errors",
    "NotRecordedError": "proximity_sdk.errors",
    "Operation": "proximity_sdk.models.operation",
    "OperationCancelled": "proximity_sdk.errors",
    "OperationError": "proximity_sdk.errors",
    "OperationEvent": "proximity_sdk.models.operation",
    "OperationFailed": "proximity_sdk.errors",
    "OperationHandle": "proximity_sdk.engine.handle",
    "OperationHandleAPI": "proximity_sdk._api.handle",
    "OperationStatus": "proximity_sdk.models.operation",
    "OperationTimeout": "proximity_sdk.errors",
    "OperationsAPI": "proximity_sdk._api.operations",
    "PermissionDeniedError": "proximity_sdk.errors",
    "Port": "proximity_sdk.models.app",
    "Proximity": "proximity_sdk._client",
    "ProximityAPI": "proximity_sdk._api.proximity",
    "ProximityError": "proximity_sdk.errors",
    "ProxmoxError": "proximity_sdk.errors",
    "ReconcileReport": "proximity_sdk.models.maintenance",
    "Resources": "proximity_sdk.models.resources",
    "Role": "proximity_sdk.models.user",
    "RootRequiredError": "proximity_sdk.errors",
    "SecretKeyError": "proximity_sdk.errors",
    "Settings": "proximity_sdk.models.settings",
    "SettingsAPI": "proximity_sdk._api.settings",
    "SettingsUpdate": "proximity_sdk.models.settings",
    "SshAccess": "proximity_sdk.models.ssh",
    "TLSError": "proximity_sdk.errors",
    "TaskError": "proximity_sdk.errors",
    "TaskFailedError": "proximity_sdk.errors",
    "TaskTimeoutError": "proximity_sdk.errors",
    "TransientError": "proximity_sdk.errors",
    "UnavailableError": "proximity_sdk.errors",
    "UnreachableError": "proximity_sdk.errors",
    "User": "proximity_sdk.models.user",
    "ValidationError": "proximity_sdk.errors",
}

__all__ = [
    "AlreadyExistsError",
    "App",
    "AppCredentials",
    "AppStatus",
    "AppUsage",
    "AppsAPI",
    "AuthenticationError",
    "Backup",
    "BackupSchedule",
    "BackupStats",
    "BackupStatus",
    "BackupTarget",
    "BackupTargetsAPI",
    "BackupsAPI",
    "BusyError",
    "CatalogAPI",
    "CatalogApp",
    "CatalogStats",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConflictError",
    "DiscoveredContainer",
    "Host",
    "HostCheck",
    "HostKeyError",
    "HostsAPI",
    "InvalidParameterError",
    "JanitorReport",
    "LockedError",
    "MaintenanceAPI",
    "Node",
    "NodeShellError",
    "NodeSyncReport",
    "NodesAPI",
    "NotFoundError",
    "NotRecordedError",
    "Operation",
    "OperationCancelled",
    "OperationError",
    "OperationEvent",
    "OperationFailed",
    "OperationHandle",
    "OperationHandleAPI",
    "OperationStatus",
    "OperationTimeout",
    "OperationsAPI",
    "PermissionDeniedError",
    "Port",
    "Proximity",
    "ProximityAPI",
    "ProximityError",
    "ProxmoxError",
    "ReconcileReport",
    "Resources",
    "Role",
    "RootRequiredError",
    "SecretKeyError",
    "Settings",
    "SettingsAPI",
    "SettingsUpdate",
    "SshAccess",
    "TLSError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransientError",
    "UnavailableError",
    "UnreachableError",
    "User",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'proximity_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # the public names and the module's dunders, not the helpers it imports for itself (Any, importlib, ...)
    dunders = {name for name in globals() if name.startswith("__") and name not in ("__getattr__", "__dir__")}
    return sorted({*__all__, *dunders})


if TYPE_CHECKING:
    from proximity_sdk._api.apps import AppsAPI
    from proximity_sdk._api.backups import BackupsAPI, BackupTargetsAPI
    from proximity_sdk._api.catalog import CatalogAPI
    from proximity_sdk._api.handle import OperationHandleAPI
    from proximity_sdk._api.hosts import HostsAPI, NodesAPI
    from proximity_sdk._api.maintenance import MaintenanceAPI
    from proximity_sdk._api.operations import OperationsAPI
    from proximity_sdk._api.proximity import ProximityAPI
    from proximity_sdk._api.settings import SettingsAPI
    from proximity_sdk._client import Proximity
    from proximity_sdk.engine.handle import OperationHandle
    from proximity_sdk.errors import (
        AlreadyExistsError,
        AuthenticationError,
        BusyError,
        CommandFailedError,
        CommandTimeoutError,
        ConflictError,
        HostKeyError,
        InvalidParameterError,
        LockedError,
        NodeShellError,
        NotFoundError,
        NotRecordedError,
        OperationCancelled,
        OperationError,
        OperationFailed,
        OperationTimeout,
        PermissionDeniedError,
        ProximityError,
        ProxmoxError,
        RootRequiredError,
        SecretKeyError,
        TaskError,
        TaskFailedError,
        TaskTimeoutError,
        TLSError,
        TransientError,
        UnavailableError,
        UnreachableError,
        ValidationError,
    )
    from proximity_sdk.models.app import (
        App,
        AppCredentials,
        AppStatus,
        Port,
    )
    from proximity_sdk.models.backup import (
        Backup,
        BackupSchedule,
        BackupStats,
        BackupStatus,
        BackupTarget,
    )
    from proximity_sdk.models.catalog import CatalogApp, CatalogStats
    from proximity_sdk.models.discovered import DiscoveredContainer
    from proximity_sdk.models.host import Host, Node
    from proximity_sdk.models.host_check import HostCheck
    from proximity_sdk.models.maintenance import (
        AppUsage,
        JanitorReport,
        NodeSyncReport,
        ReconcileReport,
    )
    from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
    from proximity_sdk.models.resources import Resources
    from proximity_sdk.models.settings import Settings, SettingsUpdate
    from proximity_sdk.models.ssh import SshAccess
    from proximity_sdk.models.user import Role, User
