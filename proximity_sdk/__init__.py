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
    "AuthenticationError": "proximity_sdk.errors",
    "BusyError": "proximity_sdk.errors",
    "CatalogApp": "proximity_sdk.models.catalog",
    "CatalogStats": "proximity_sdk.models.catalog",
    "CommandFailedError": "proximity_sdk.errors",
    "CommandTimeoutError": "proximity_sdk.errors",
    "ConflictError": "proximity_sdk.errors",
    "Host": "proximity_sdk.models.host",
    "HostCheck": "proximity_sdk.models.host_check",
    "HostKeyError": "proximity_sdk.errors",
    "InvalidParameterError": "proximity_sdk.errors",
    "LockedError": "proximity_sdk.errors",
    "Node": "proximity_sdk.models.host",
    "NodeShellError": "proximity_sdk.errors",
    "NotFoundError": "proximity_sdk.errors",
    "OperationCancelled": "proximity_sdk.errors",
    "OperationError": "proximity_sdk.errors",
    "OperationFailed": "proximity_sdk.errors",
    "OperationTimeout": "proximity_sdk.errors",
    "PermissionDeniedError": "proximity_sdk.errors",
    "Proximity": "proximity_sdk._client",
    "ProximityError": "proximity_sdk.errors",
    "ProxmoxError": "proximity_sdk.errors",
    "Resources": "proximity_sdk.models.resources",
    "RootRequiredError": "proximity_sdk.errors",
    "SecretKeyError": "proximity_sdk.errors",
    "Settings": "proximity_sdk.models.settings",
    "SshAccess": "proximity_sdk.models.ssh",
    "TLSError": "proximity_sdk.errors",
    "TaskError": "proximity_sdk.errors",
    "TaskFailedError": "proximity_sdk.errors",
    "TaskTimeoutError": "proximity_sdk.errors",
    "TransientError": "proximity_sdk.errors",
    "UnavailableError": "proximity_sdk.errors",
    "UnreachableError": "proximity_sdk.errors",
    "ValidationError": "proximity_sdk.errors",
}

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BusyError",
    "CatalogApp",
    "CatalogStats",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConflictError",
    "Host",
    "HostCheck",
    "HostKeyError",
    "InvalidParameterError",
    "LockedError",
    "Node",
    "NodeShellError",
    "NotFoundError",
    "OperationCancelled",
    "OperationError",
    "OperationFailed",
    "OperationTimeout",
    "PermissionDeniedError",
    "Proximity",
    "ProximityError",
    "ProxmoxError",
    "Resources",
    "RootRequiredError",
    "SecretKeyError",
    "Settings",
    "SshAccess",
    "TLSError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransientError",
    "UnavailableError",
    "UnreachableError",
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
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from proximity_sdk._client import Proximity
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
    from proximity_sdk.models.catalog import CatalogApp, CatalogStats
    from proximity_sdk.models.host import Host, Node
    from proximity_sdk.models.host_check import HostCheck
    from proximity_sdk.models.resources import Resources
    from proximity_sdk.models.settings import Settings
    from proximity_sdk.models.ssh import SshAccess
