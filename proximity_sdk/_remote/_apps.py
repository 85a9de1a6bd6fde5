"""``px.apps`` over the agent. Long actions answer at once with a handle on the operation."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, common_pb2, operations_pb2
from proximity_sdk._remote import _convert as cv
from proximity_sdk._remote._channel import Connection
from proximity_sdk._remote._handle import RemoteOperationHandle
from proximity_sdk.errors import ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import check_ports, check_stop_args
from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy, parse_app_status
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.update import AppUpdate, UpdateWindow

__all__ = ["RemoteApps"]

_PAGE = 200
_STRATEGY = {"auto": apps_pb2.DEPLOY_STRATEGY_AUTO, "oci": apps_pb2.DEPLOY_STRATEGY_OCI,
             "compose": apps_pb2.DEPLOY_STRATEGY_COMPOSE}


def _seconds(value: object, field: str) -> int:
    # zero means "the default" on the wire: refuse it here, as the local SDK does
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        raise ValidationError(f"{field} must be whole seconds from 1 to 3600", field=field)
    return value


def _no_owner(owner_id: str | None) -> None:
    if owner_id is not None:
        raise ValidationError("owner_id cannot be chosen through the agent: the calling user owns what it creates",
                              field="owner_id", hint="Leave owner_id None, or connect with the owner's token")


def _resources(resources: object) -> common_pb2.Resources:
    if not isinstance(resources, Resources):
        raise ValidationError("resources must be a Resources(...)", field="resources")
    return cv.resources_to_pb(resources)


class RemoteApps:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = apps_pb2_grpc.AppServiceStub(conn.channel)

    def _handle(self, op: operations_pb2.Operation) -> RemoteOperationHandle:
        return RemoteOperationHandle(self._conn, op.id)

    # deploy and lifecycle ---------------------------------------------------------------------

    def deploy(self, catalog_id: str, *, hostname: str, host: str | None = None, node: str | None = None,
               environment: Mapping[str, str] | None = None, resources: Resources | None = None,
               strategy: DeployStrategy = "auto", owner_id: str | None = None) -> RemoteOperationHandle[App]:
        """Deploy a catalog app into a new container. Returns the Operation at once; ``wait()``
        gives the running ``App``. The calling user owns it. ``strategy``: see the local SDK."""
        _no_owner(owner_id)
        from proximity_sdk.operations.deploy.kind import check_strategy  # lazily: it imports the local engine

        request = apps_pb2.DeployAppRequest(catalog_id=catalog_id, hostname=hostname, host=host or "",
                                            node=node or "", environment=dict(environment or {}),
                                            strategy=_STRATEGY[check_strategy(strategy)])
        if resources is not None:
            request.resources.CopyFrom(_resources(resources))
        return self._handle(self._conn.call(self._stub.DeployApp, request).operation)

    def deploy_image(self, reference: str, *, hostname: str, host: str | None = None, node: str | None = None,
                     environment: Mapping[str, str] | None = None, ports: Sequence[int] = (),
                     resources: Resources | None = None, owner_id: str | None = None) -> RemoteOperationHandle[App]:
        """Deploy an OCI image as a native OCI application container (PVE >= 9.1); see the local SDK."""
        _no_owner(owner_id)
        from proximity_sdk.proxmox.oci import check_reference  # lazily: it imports the Proxmox client

        reference = check_reference(reference)
        check_ports(ports)
        request = apps_pb2.DeployImageRequest(reference=reference, hostname=hostname, host=host or "",
                                              node=node or "", environment=dict(environment or {}),
                                              ports=list(ports))
        if resources is not None:
            request.resources.CopyFrom(_resources(resources))
        return self._handle(self._conn.call(self._stub.DeployImage, request).operation)

    def start(self, app_id: str) -> RemoteOperationHandle[App]:
        request = apps_pb2.StartAppRequest(app_id=app_id)
        return self._handle(self._conn.call(self._stub.StartApp, request).operation)

    def stop(self, app_id: str, *, force: bool | None = None,
             timeout: int | None = None) -> RemoteOperationHandle[App]:
        """Shut down cleanly within ``timeout`` seconds; with ``force``, kill it after that. None:
        the app's own default, decided by the agent (a compose app: 60 s, no kill; a native OCI
        app: its grace period, then a kill; docs/oci.md)."""
        force, timeout = check_stop_args(force=force, timeout=timeout)
        kill = {None: apps_pb2.STOP_KILL_UNSPECIFIED, False: apps_pb2.STOP_KILL_NEVER,
                True: apps_pb2.STOP_KILL_AFTER_TIMEOUT}[force]
        request = apps_pb2.StopAppRequest(app_id=app_id, kill=kill, timeout_seconds=timeout or 0)
        return self._handle(self._conn.call(self._stub.StopApp, request).operation)

    def restart(self, app_id: str) -> RemoteOperationHandle[App]:
        request = apps_pb2.RestartAppRequest(app_id=app_id)
        return self._handle(self._conn.call(self._stub.RestartApp, request).operation)

    def delete(self, app_id: str, *, destroy: bool = True) -> RemoteOperationHandle[None]:
        """Destroy the app's container (purge) and forget it; ``destroy=False`` only forgets it."""
        request = apps_pb2.DeleteAppRequest(app_id=app_id, destroy=bool(destroy))
        return self._handle(self._conn.call(self._stub.DeleteApp, request).operation)

    # updates ----------------------------------------------------------------------------------

    def updates(self, *, app_id: str | None = None, pull: bool = True) -> builtins.list[AppUpdate]:
        """The apps with something newer: a newer catalog version, or (with ``pull``) new digests of
        floating image tags after a pull in the app's container. ``app_id`` checks one app."""
        request = apps_pb2.CheckAppUpdatesRequest(app_id=app_id or "", pull=bool(pull))
        return Listing(cv.app_update_from_pb(u) for u in self._conn.call(self._stub.CheckAppUpdates, request).updates)

    def update(self, app_id: str, *, version: str | None = None) -> RemoteOperationHandle[App]:
        """Update a running app to the catalog's version and current image digests (a safety backup
        first, restored if anything fails); ``wait()`` gives the ``App``."""
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ValidationError("version must be a catalog version string", field="version")
        request = apps_pb2.UpdateAppRequest(app_id=app_id, version=version)
        return self._handle(self._conn.call(self._stub.UpdateApp, request).operation)

    def set_update_window(self, app_id: str, *, window: UpdateWindow | None) -> UpdateWindow | None:
        """Update the app automatically in this weekly maintenance window (UTC), or never (``None``)."""
        if window is not None and not isinstance(window, UpdateWindow):
            raise ValidationError("window must be an UpdateWindow(start='03:00', ...) or None", field="window")
        request = apps_pb2.SetAppUpdateWindowRequest(app_id=app_id)
        if window is not None:
            request.window.CopyFrom(cv.update_window_to_pb(window))
        response = self._conn.call(self._stub.SetAppUpdateWindow, request)
        return cv.update_window_from_pb(response.window) if response.HasField("window") else None

    def update_window(self, app_id: str) -> UpdateWindow | None:
        """The app's automatic update window, or None."""
        response = self._conn.call(self._stub.GetAppUpdateWindow, apps_pb2.GetAppUpdateWindowRequest(app_id=app_id))
        return cv.update_window_from_pb(response.window) if response.HasField("window") else None

    def run_due_updates(self, *, now: datetime | None = None) -> builtins.list[RemoteOperationHandle[App]]:
        """Check the apps whose update window is open and start their updates, once per window.
        Admin only (the agent's scheduler does it)."""
        if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
            raise ValidationError("now must be a timezone-aware datetime", field="now")
        request = apps_pb2.RunDueAppUpdatesRequest()
        if now is not None:
            request.now.CopyFrom(cv.timestamp_to_pb(now))
        return Listing(self._handle(op) for op in self._conn.call(self._stub.RunDueAppUpdates, request).operations)

    # copies, moves and sizes ------------------------------------------------------------------

    def clone(self, app_id: str, *, hostname: str, node: str | None = None,
              owner_id: str | None = None) -> RemoteOperationHandle[App]:
        """Copy the app into a new app named ``hostname``; ``wait()`` gives the NEW app."""
        _no_owner(owner_id)
        request = apps_pb2.CloneAppRequest(app_id=app_id, hostname=hostname, node=node or "")
        return self._handle(self._conn.call(self._stub.CloneApp, request).operation)

    def migrate(self, app_id: str, *, node: str, shutdown_timeout: int = 180) -> RemoteOperationHandle[App]:
        """Move the app's container to ``node`` of the same cluster."""
        request = apps_pb2.MigrateAppRequest(app_id=app_id, node=node, shutdown_timeout_seconds=_seconds(
            shutdown_timeout, "shutdown_timeout"))
        return self._handle(self._conn.call(self._stub.MigrateApp, request).operation)

    def resize(self, app_id: str, *, resources: Resources) -> RemoteOperationHandle[App]:
        """Change cores, memory, swap and/or grow the disk (fields left None stay)."""
        request = apps_pb2.ResizeAppRequest(app_id=app_id, resources=_resources(resources))
        return self._handle(self._conn.call(self._stub.ResizeApp, request).operation)

    # discover and adopt -------------------------------------------------------------------------

    def discover(self, host: str | None = None) -> builtins.list[DiscoveredContainer]:
        """Containers no app manages, on every host or on one (id or name)."""
        response = self._conn.call(self._stub.DiscoverApps, apps_pb2.DiscoverAppsRequest(host=host or ""))
        return Listing(cv.discovered_from_pb(c) for c in response.containers)

    def adopt(self, vmid: int, *, host: str | None = None, node: str | None = None, catalog_id: str | None = None,
              hostname: str | None = None, owner_id: str | None = None) -> RemoteOperationHandle[App]:
        """Make an existing container an app, without changing it; ``wait()`` gives the ``App``."""
        _no_owner(owner_id)
        if isinstance(vmid, bool) or not isinstance(vmid, int):
            raise ValidationError("vmid must be a whole number", field="vmid")
        request = apps_pb2.AdoptAppRequest(vmid=vmid, host=host or "", node=node or "", catalog_id=catalog_id or "",
                                           hostname=hostname or "")
        return self._handle(self._conn.call(self._stub.AdoptApp, request).operation)

    # reads ------------------------------------------------------------------------------------

    def get(self, app_id: str) -> App:
        return cv.app_from_pb(self._conn.call(self._stub.GetApp, apps_pb2.GetAppRequest(app_id=app_id)).app)

    def iter(self, *, status: AppStatus | str | None = None, search: str | None = None,
             host: str | None = None, owner_id: str | None = None) -> Iterator[App]:
        """Every matching app, page by page."""
        request = apps_pb2.ListAppsRequest(status=cv.app_status_to_pb(parse_app_status(status)),
                                           search=search or "", host=host or "", owner_id=owner_id or "")
        for app in self._conn.pages(self._stub.ListApps, request, "apps", page_size=_PAGE):
            yield cv.app_from_pb(app)

    def list(self, *, status: AppStatus | str | None = None, search: str | None = None, host: str | None = None,
             owner_id: str | None = None) -> builtins.list[App]:
        """Every matching app (all pages)."""
        parse_app_status(status)
        return Listing(self.iter(status=status, search=search, host=host, owner_id=owner_id))

    def logs(self, app_id: str, *, tail: int = 200, service: str | None = None) -> str:
        """The last ``tail`` lines of the app's compose services."""
        if isinstance(tail, bool) or not isinstance(tail, int) or not 1 <= tail <= 100_000:
            raise ValidationError("tail must be a number of lines from 1 to 100000", field="tail")
        request = apps_pb2.GetAppLogsRequest(app_id=app_id, tail=tail, service=service or "")
        return self._conn.call(self._stub.GetAppLogs, request).text

    def credentials(self, app_id: str) -> AppCredentials:
        """The root password and generated secrets (for the app's owner or an admin)."""
        request = apps_pb2.GetAppCredentialsRequest(app_id=app_id)
        return cv.credentials_from_pb(self._conn.call(self._stub.GetAppCredentials, request).credentials)
