"""The contract is the Protocols of ``proximity_sdk._api``: both clients subclass them, implement
every member themselves (none falls through to a Protocol's empty body), and show the Protocol's
documentation in ``help()`` and ``inspect.getdoc``."""

from __future__ import annotations

import inspect
import pydoc
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk import (
    AppsAPI,
    BackupsAPI,
    BackupTargetsAPI,
    CatalogAPI,
    HostsAPI,
    MaintenanceAPI,
    NodesAPI,
    OperationHandleAPI,
    OperationsAPI,
    ProximityAPI,
    SettingsAPI,
)
from proximity_sdk._client import Proximity
from proximity_sdk._remote._apps import RemoteApps
from proximity_sdk._remote._backups import RemoteBackups, RemoteBackupTargets
from proximity_sdk._remote._catalog import RemoteCatalog
from proximity_sdk._remote._client import RemoteProximity
from proximity_sdk._remote._handle import RemoteOperationHandle
from proximity_sdk._remote._hosts import RemoteHosts, RemoteNodes
from proximity_sdk._remote._misc import RemoteMaintenance, RemoteOperations, RemoteSettings
from proximity_sdk._resources.apps import Apps
from proximity_sdk._resources.backups import Backups, BackupTargets
from proximity_sdk._resources.hosts import Hosts, Nodes
from proximity_sdk._resources.maintenance import Maintenance
from proximity_sdk._resources.operations import Operations
from proximity_sdk._resources.settings import SettingsResource
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.engine.handle import OperationHandle

# Protocol -> (local class, remote class)
CONTRACT: dict[type, tuple[type, type]] = {
    ProximityAPI: (Proximity, RemoteProximity),
    HostsAPI: (Hosts, RemoteHosts),
    NodesAPI: (Nodes, RemoteNodes),
    CatalogAPI: (Catalog, RemoteCatalog),
    AppsAPI: (Apps, RemoteApps),
    BackupsAPI: (Backups, RemoteBackups),
    BackupTargetsAPI: (BackupTargets, RemoteBackupTargets),
    OperationsAPI: (Operations, RemoteOperations),
    SettingsAPI: (SettingsResource, RemoteSettings),
    MaintenanceAPI: (Maintenance, RemoteMaintenance),
    OperationHandleAPI: (OperationHandle, RemoteOperationHandle),
}


def _members(protocol: type) -> dict[str, Any]:
    """The Protocol's methods and properties (``id`` and ``targets`` are attributes: annotations only)."""
    return {
        n: m
        for n, m in vars(protocol).items()
        if (not n.startswith("_") or n in ("__contains__", "__len__", "__iter__", "__enter__", "__exit__"))
        and (inspect.isfunction(m) or isinstance(m, property))
    }


CASES = [(protocol, impl) for protocol, impls in CONTRACT.items() for impl in impls]


def test_every_public_protocol_is_exported_and_covered() -> None:
    import proximity_sdk

    exported = {name for name in proximity_sdk.__all__ if name.endswith("API")}
    assert exported == {p.__name__ for p in CONTRACT}


@pytest.mark.parametrize(("protocol", "impl"), CASES, ids=lambda c: c.__name__)
def test_both_sides_subclass_and_implement_every_member(protocol: type, impl: type) -> None:
    assert protocol in impl.__mro__, f"{impl.__name__} does not declare {protocol.__name__}"
    for name, member in _members(protocol).items():
        found = inspect.getattr_static(impl, name)
        assert found is not member, f"{impl.__name__}.{name} is the Protocol's empty body"


@pytest.mark.parametrize(("protocol", "impl"), CASES, ids=lambda c: c.__name__)
def test_help_shows_the_protocols_text(protocol: type, impl: type) -> None:
    members = _members(protocol)
    assert members
    for name, member in members.items():
        if name in ("__enter__", "__exit__"):
            continue
        text = inspect.getdoc(member)
        assert text, f"{protocol.__name__}.{name} has no docstring"
        shown = inspect.getdoc(getattr(impl, name))
        assert shown == text, f"{impl.__name__}.{name} does not show the Protocol's text"
    assert inspect.getdoc(protocol)
    # help() renders the inherited text too
    first = (inspect.getdoc(next(iter(members.values()))) or "").splitlines()[0]
    assert first in pydoc.render_doc(impl, renderer=pydoc.plaintext)


def test_the_check_can_fail() -> None:
    """A method that falls through to the Protocol's body is caught, and one without text too."""

    class Broken(SettingsAPI):
        def get(self) -> Any:
            return None

    with pytest.raises(AssertionError, match="Protocol's empty body"):
        test_both_sides_subclass_and_implement_every_member(SettingsAPI, Broken)

    class Undocumented(SettingsAPI):
        def get(self) -> Any:
            """Something else."""

    with pytest.raises(AssertionError, match="does not show the Protocol's text"):
        test_help_shows_the_protocols_text(SettingsAPI, Undocumented)


def test_remote_docstrings_do_not_send_readers_to_the_local_sdk() -> None:
    remote = Path(RemoteApps.__module__.replace(".", "/")).parent
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / remote).glob("*.py")):
        text = path.read_text()
        assert "see the local SDK" not in text and "see ``Proximity.local" not in text, path.name
