"""The public surface: the exact exported names, lazy imports, typing marker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import proximity_sdk

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert proximity_sdk.__all__ == EXPECTED
    assert sorted(proximity_sdk.__all__) == proximity_sdk.__all__
    assert set(proximity_sdk._EXPORTS) == set(proximity_sdk.__all__)


def test_every_public_name_resolves() -> None:
    for name in proximity_sdk.__all__:
        assert getattr(proximity_sdk, name).__name__ == name


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        proximity_sdk.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_import_is_lazy() -> None:
    """`import proximity_sdk` must not pull in the heavy libraries (startup time of scripts and the CLI)."""
    code = (
        "import sys, proximity_sdk; "
        "heavy = [m for m in ('pydantic', 'sqlalchemy', 'proxmoxer', 'paramiko', 'requests', 'grpc', "
        "'cryptography') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_is_typed() -> None:
    assert (Path(proximity_sdk.__file__).parent / "py.typed").is_file()


def test_error_tree_is_drawn_with_every_error() -> None:
    from proximity_sdk import errors

    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, f"{name} is missing from the tree in errors.py's docstring"
        assert issubclass(getattr(errors, name), errors.ProximityError)
