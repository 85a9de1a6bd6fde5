"""``px.apps`` over the agent. Long actions answer at once with a handle on the operation."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from proximity_sdk._api.apps import AppsAPI
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, common_pb2, operations_pb2
from proximity_sdk._remote._channel import Connection
from proximity_sdk._remote._handle import RemoteOperationHandle
from proximity_sdk._wire.apps import (
    app_from_pb,
    app_status_filter_to_pb,
    app_update_from_pb,
    credentials_from_pb,
    discovered_from_pb,
    environment_to_pb,
    stop_force_to_pb,
    strategy_to_pb,
    update_window_from_pb,
    update_window_to_pb,
)
from proximity_sdk._wire.common import resources_to_pb, timestamp_to_pb
from proximity_sdk.errors import ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import (
    check_aware_time,
    check_log_tail,
    check_ports,
    check_reference,
    check_resources,
    check_stop_args,
    check_strategy,
    check_update_window,
    check_version,
    check_whole_seconds,
)
from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy, parse_app_status
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.update import AppUpdate, UpdateWindow

__all__ = ["RemoteApps"]

_PAGE = 200


def _no_owner(owner_id: str | None) -> None:
    if owner_id is not None:
        raise ValidationError(
            "owner_id cannot be chosen through the agent: the calling user owns what it creates",
            field="owner_id",
            hint="Leave owner_id None, or connect with the owner's token",
        )


def _resources(resources: Resources) -> common_pb2.Resources:
    check_resources(resources)
    return resources_to_pb(resources)


class RemoteApps(AppsAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = apps_pb2_grpc.AppServiceStub(conn.channel)

    def _handle(self, op: operations_pb2.Operation) -> RemoteOperationHandle:
        return RemoteOperationHandle(self._conn, op.id)

    # deploy and lifecycle ---------------------------------------------------------------------

    def deploy(
        self,
        catalog_id: str,
        *,
        hostname: str,
        host: str | None = None,
        node: str | None = None,
        environment: Mapping[str, str] | None = None,
        resources: Resources | None = None,
        strategy: DeployStrategy = "auto",
        owner_id: str | None = None,
    ) -> RemoteOperationHandle[App]:
        _no_owner(owner_id)
        request = apps_pb2.DeployAppRequest(
            catalog_id=catalog_id,
            hostname=hostname,
            host=host or "",
            node=node or "",
            environment=environment_to_pb(environment),
            strategy=strategy_to_pb(check_strategy(strategy)),
        )
        if resources is not None:
            request.resources.CopyFrom(_resources(resources))
        return self._handle(self._conn.call(self._stub.DeployApp, request).operation)

    def deploy_image(
        self,
        reference: str,
        *,
        hostname: str,
        host: str | None = None,
        node: str | None = None,
        environment: Mapping[str, str] | None = None,
        ports: Sequence[int] = (),
        resources: Resources | None = None,
        owner_id: str | None = None,
    ) -> RemoteOperationHandle[App]:
        _no_owner(owner_id)
        reference = check_reference(reference)
        check_ports(ports)
        request = apps_pb2.DeployImageRequest(
            reference=reference,
            hostname=hostname,
            host=host or "",
            node=node or "",
            environment=environment_to_pb(environment),
            ports=list(ports),
        )
        if resources is not None:
            request.resources.CopyFrom(_resources(resources))
        return self._handle(self._conn.call(self._stub.DeployImage, request).operation)

    def start(self, app_id: str) -> RemoteOperationHandle[App]:
        request = apps_pb2.StartAppRequest(app_id=app_id)
        return self._handle(self._conn.call(self._stub.StartApp, request).operation)

    def stop(self, app_id: str, *, force: bool | None = None, timeout: int | None = None) -> RemoteOperationHandle[App]:
        force, timeout = check_stop_args(force=force, timeout=timeout)
        request = apps_pb2.StopAppRequest(app_id=app_id, kill=stop_force_to_pb(force), timeout_seconds=timeout or 0)
        return self._handle(self._conn.call(self._stub.StopApp, request).operation)

    def restart(self, app_id: str) -> RemoteOperationHandle[App]:
        request = apps_pb2.RestartAppRequest(app_id=app_id)
        return self._handle(self._conn.call(self._stub.RestartApp, request).operation)

    def delete(self, app_id: str, *, destroy: bool = True) -> RemoteOperationHandle[None]:
        request = apps_pb2.DeleteAppRequest(app_id=app_id, destroy=bool(destroy))
        return self._handle(self._conn.call(self._stub.DeleteApp, request).operation)

    # updates ----------------------------------------------------------------------------------

    def updates(self, *, app_id: str | None = None, pull: bool = True) -> builtins.list[AppUpdate]:
        request = apps_pb2.CheckAppUpdatesRequest(app_id=app_id or "", pull=bool(pull))
        return Listing(app_update_from_pb(u) for u in self._conn.call(self._stub.CheckAppUpdates, request).updates)

    def update(self, app_id: str, *, version: str | None = None) -> RemoteOperationHandle[App]:
        check_version(version)
        request = apps_pb2.UpdateAppRequest(app_id=app_id, version=version)
        return self._handle(self._conn.call(self._stub.UpdateApp, request).operation)

    def set_update_window(self, app_id: str, *, window: UpdateWindow | None) -> UpdateWindow | None:
        check_update_window(window)
        request = apps_pb2.SetAppUpdateWindowRequest(app_id=app_id)
        if window is not None:
            request.window.CopyFrom(update_window_to_pb(window))
        response = self._conn.call(self._stub.SetAppUpdateWindow, request)
        return update_window_from_pb(response.window) if response.HasField("window") else None

    def update_window(self, app_id: str) -> UpdateWindow | None:
        response = self._conn.call(self._stub.GetAppUpdateWindow, apps_pb2.GetAppUpdateWindowRequest(app_id=app_id))
        return update_window_from_pb(response.window) if response.HasField("window") else None

    def run_due_updates(self, *, now: datetime | None = None) -> builtins.list[RemoteOperationHandle[App]]:
        check_aware_time(now)
        request = apps_pb2.RunDueAppUpdatesRequest()
        if now is not None:
            request.now.CopyFrom(timestamp_to_pb(now))
        return Listing(self._handle(op) for op in self._conn.call(self._stub.RunDueAppUpdates, request).operations)

    # copies, moves and sizes ------------------------------------------------------------------

    def clone(
        self, app_id: str, *, hostname: str, node: str | None = None, owner_id: str | None = None
    ) -> RemoteOperationHandle[App]:
        _no_owner(owner_id)
        request = apps_pb2.CloneAppRequest(app_id=app_id, hostname=hostname, node=node or "")
        return self._handle(self._conn.call(self._stub.CloneApp, request).operation)

    def migrate(self, app_id: str, *, node: str, shutdown_timeout: int = 180) -> RemoteOperationHandle[App]:
        # zero means "the default" on the wire: refused here, as locally
        seconds = check_whole_seconds(shutdown_timeout, field="shutdown_timeout")
        request = apps_pb2.MigrateAppRequest(app_id=app_id, node=node, shutdown_timeout_seconds=seconds)
        return self._handle(self._conn.call(self._stub.MigrateApp, request).operation)

    def resize(self, app_id: str, *, resources: Resources) -> RemoteOperationHandle[App]:
        request = apps_pb2.ResizeAppRequest(app_id=app_id, resources=_resources(resources))
        return self._handle(self._conn.call(self._stub.ResizeApp, request).operation)

    # discover and adopt -------------------------------------------------------------------------

    def discover(self, host: str | None = None) -> builtins.list[DiscoveredContainer]:
        response = self._conn.call(self._stub.DiscoverApps, apps_pb2.DiscoverAppsRequest(host=host or ""))
        return Listing(discovered_from_pb(c) for c in response.containers)

    def adopt(
        self,
        vmid: int,
        *,
        host: str | None = None,
        node: str | None = None,
        catalog_id: str | None = None,
        hostname: str | None = None,
        owner_id: str | None = None,
    ) -> RemoteOperationHandle[App]:
        _no_owner(owner_id)
        if isinstance(vmid, bool) or not isinstance(vmid, int):
            raise ValidationError("vmid must be a whole number", field="vmid")
        request = apps_pb2.AdoptAppRequest(
            vmid=vmid, host=host or "", node=node or "", catalog_id=catalog_id or "", hostname=hostname or ""
        )
        return self._handle(self._conn.call(self._stub.AdoptApp, request).operation)

    # reads ------------------------------------------------------------------------------------

    def get(self, app_id: str) -> App:
        return app_from_pb(self._conn.call(self._stub.GetApp, apps_pb2.GetAppRequest(app_id=app_id)).app)

    def iter(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> Iterator[App]:
        request = apps_pb2.ListAppsRequest(
            status=app_status_filter_to_pb(parse_app_status(status)),
            search=search or "",
            host=host or "",
            owner_id=owner_id or "",
        )
        for app in self._conn.pages(self._stub.ListApps, request, "apps", page_size=_PAGE):
            yield app_from_pb(app)

    def list(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> builtins.list[App]:
        parse_app_status(status)
        return Listing(self.iter(status=status, search=search, host=host, owner_id=owner_id))

    def logs(self, app_id: str, *, tail: int = 200, service: str | None = None) -> str:
        check_log_tail(tail)
        request = apps_pb2.GetAppLogsRequest(app_id=app_id, tail=tail, service=service or "")
        return self._conn.call(self._stub.GetAppLogs, request).text

    def credentials(self, app_id: str) -> AppCredentials:
        request = apps_pb2.GetAppCredentialsRequest(app_id=app_id)
        return credentials_from_pb(self._conn.call(self._stub.GetAppCredentials, request).credentials)
