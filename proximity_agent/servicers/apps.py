"""AppService. Members reach their own apps only (another's answers NOT_FOUND); DiscoverApps and
AdoptApp are admin-only (auth.POLICY). Long actions answer with the Operation at once."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator

from proximity_agent.auth import current_caller, hidden
from proximity_agent.servicers._base import MAX_PAGE_SIZE, Backend
from proximity_agent.servicers._keyset import keyset_request
from proximity_agent.status import CallerNotAllowed
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, operations_pb2
from proximity_sdk._wire.apps import (
    app_status_filter_from_pb,
    app_to_pb,
    app_update_to_pb,
    credentials_to_pb,
    discovered_to_pb,
    environment_from_pb,
    stop_force_from_pb,
    strategy_from_pb,
    update_window_from_pb,
    update_window_to_pb,
)
from proximity_sdk._wire.common import resources_from_pb, timestamp_from_pb
from proximity_sdk._wire.operations import operation_to_pb
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.errors import AlreadyExistsError
from proximity_sdk.models.app import App
from proximity_sdk.models.update import AppUpdate, UpdateWindow
from proximity_sdk.store._keyset import Cursor

__all__ = ["AppServicer"]

_Ctx = object
# as many as the store keeps Apps (apps_repo._APP_CACHE_SIZE): ~2 KB each with a compose file
_KEPT_MESSAGES = 16_384


def _operation(
    start: Callable[[], OperationHandle], *, hostname: str | None = None
) -> Callable[[], operations_pb2.Operation]:
    def run() -> operations_pb2.Operation:
        with _hostname_available(hostname):
            return operation_to_pb(start().get())

    return run


class _AppMessages:
    """``app_to_pb`` of the Apps recently answered, one per app id, given for that very App object.

    The store's reads give the same App object again for an unchanged row and a new one for any
    change (store/apps_repo._AppCache, which compares the row's every value), so a message is
    reused only for the App it was made of (``is``), and a changed app's new App replaces it.
    A page of 100 apps took ~1.7 ms to convert, ~0.1 ms to copy from here. Only the event loop
    uses it (the conversions run there), so it needs no lock. Apps are frozen and the messages are
    copied into each answer, never changed. Holds what the answers hold, no secret."""

    def __init__(self, size: int, stored_config: Callable[[App], str | None]) -> None:
        self._size = size
        self._stored_config = stored_config
        self._kept: OrderedDict[str, tuple[App, apps_pb2.App]] = OrderedDict()

    def __call__(self, app: App) -> apps_pb2.App:
        kept = self._kept.get(app.id)
        if kept is not None and kept[0] is app:
            self._kept.move_to_end(app.id)
            return kept[1]
        # the config as the store read it, when it still is: not encoded again
        message = app_to_pb(app, config_json=self._stored_config(app))
        self._kept[app.id] = (app, message)
        self._kept.move_to_end(app.id)
        if len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return message


@contextlib.contextmanager
def _hostname_available(hostname: str | None) -> Iterator[None]:
    """Hostnames are one namespace per host, shared by every user (they name containers, and
    addresses in DNS): a taken one cannot be handed out, so "not available" is the one thing the
    answer must say. It says nothing more: the same words whether the caller's own app, another
    user's, or anything else holds the name, and no owner, id or VMID."""
    try:
        yield
    except AlreadyExistsError as exc:
        if hostname is None or repr(hostname) not in str(exc):
            raise
        raise AlreadyExistsError(
            f"the hostname {hostname!r} is not available on this host",
            hint="Hostnames are shared by everyone who deploys on a host; choose another",
        ) from None


class AppServicer(apps_pb2_grpc.AppServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._messages = _AppMessages(_KEPT_MESSAGES, backend.px.store.apps.stored_config)

    def _own(self, app_id: str) -> App:
        """The app, when the caller may reach it (runs on the pool)."""
        with hidden("app", app_id):
            app = self._b.px.apps.get(app_id)
        current_caller().check_owner(app.owner_id, what="app", ident=app_id)
        return app

    async def _act(self, app_id: str, start: Callable[[], OperationHandle]) -> operations_pb2.Operation:
        def run() -> operations_pb2.Operation:
            self._own(app_id)
            return operation_to_pb(start().get())

        return await self._b.run(run)

    # deploy and lifecycle ------------------------------------------------------------------------

    async def DeployApp(self, request: apps_pb2.DeployAppRequest, context: _Ctx) -> apps_pb2.DeployAppResponse:
        resources = resources_from_pb(request.resources) if request.HasField("resources") else None
        caller = current_caller()
        op = await self._b.run(
            _operation(
                hostname=request.hostname,
                start=lambda: self._b.px.apps.deploy(
                    request.catalog_id,
                    hostname=request.hostname,
                    host=request.host or None,
                    node=request.node or None,
                    environment=environment_from_pb(request.environment),
                    resources=resources,
                    strategy=strategy_from_pb(request.strategy),
                    owner_id=caller.id,
                ),
            )
        )
        return apps_pb2.DeployAppResponse(operation=op)

    async def DeployImage(self, request: apps_pb2.DeployImageRequest, context: _Ctx) -> apps_pb2.DeployImageResponse:
        resources = resources_from_pb(request.resources) if request.HasField("resources") else None
        caller = current_caller()
        op = await self._b.run(
            _operation(
                hostname=request.hostname,
                start=lambda: self._b.px.apps.deploy_image(
                    request.reference,
                    hostname=request.hostname,
                    host=request.host or None,
                    node=request.node or None,
                    environment=environment_from_pb(request.environment),
                    ports=list(request.ports),
                    resources=resources,
                    owner_id=caller.id,
                ),
            )
        )
        return apps_pb2.DeployImageResponse(operation=op)

    async def StartApp(self, request: apps_pb2.StartAppRequest, context: _Ctx) -> apps_pb2.StartAppResponse:
        op = await self._act(request.app_id, lambda: self._b.px.apps.start(request.app_id))
        return apps_pb2.StartAppResponse(operation=op)

    async def StopApp(self, request: apps_pb2.StopAppRequest, context: _Ctx) -> apps_pb2.StopAppResponse:
        # unspecified, or 0 seconds: the app's own default (docs/oci.md); the deprecated `force`
        # still asks for a kill from clients older than `kill`
        op = await self._act(
            request.app_id,
            lambda: self._b.px.apps.stop(
                request.app_id,
                force=stop_force_from_pb(request.kill, deprecated_force=request.force),
                timeout=request.timeout_seconds or None,
            ),
        )
        return apps_pb2.StopAppResponse(operation=op)

    async def RestartApp(self, request: apps_pb2.RestartAppRequest, context: _Ctx) -> apps_pb2.RestartAppResponse:
        op = await self._act(request.app_id, lambda: self._b.px.apps.restart(request.app_id))
        return apps_pb2.RestartAppResponse(operation=op)

    async def DeleteApp(self, request: apps_pb2.DeleteAppRequest, context: _Ctx) -> apps_pb2.DeleteAppResponse:
        destroy = request.destroy if request.HasField("destroy") else True
        op = await self._act(request.app_id, lambda: self._b.px.apps.delete(request.app_id, destroy=destroy))
        return apps_pb2.DeleteAppResponse(operation=op)

    async def UpdateApp(self, request: apps_pb2.UpdateAppRequest, context: _Ctx) -> apps_pb2.UpdateAppResponse:
        version = request.version if request.HasField("version") else None
        op = await self._act(request.app_id, lambda: self._b.px.apps.update(request.app_id, version=version))
        return apps_pb2.UpdateAppResponse(operation=op)

    async def CheckAppUpdates(
        self,
        request: apps_pb2.CheckAppUpdatesRequest,
        context: _Ctx,
    ) -> apps_pb2.CheckAppUpdatesResponse:
        caller = current_caller()
        pull = request.pull if request.HasField("pull") else True
        apps = self._b.px.apps

        def check() -> list[AppUpdate]:
            if request.app_id:
                self._own(request.app_id)
                return list(apps.updates(app_id=request.app_id, pull=pull))
            if caller.is_admin:
                return list(apps.updates(pull=pull))
            return [u for app in apps.iter(owner_id=caller.id) for u in apps.updates(app_id=app.id, pull=pull)]

        updates = await self._b.run_long(check)
        return apps_pb2.CheckAppUpdatesResponse(updates=[app_update_to_pb(u) for u in updates])

    async def SetAppUpdateWindow(
        self,
        request: apps_pb2.SetAppUpdateWindowRequest,
        context: _Ctx,
    ) -> apps_pb2.SetAppUpdateWindowResponse:
        window = update_window_from_pb(request.window) if request.HasField("window") else None

        def set_window() -> UpdateWindow | None:
            self._own(request.app_id)
            return self._b.px.apps.set_update_window(request.app_id, window=window)

        now = await self._b.run(set_window)
        return apps_pb2.SetAppUpdateWindowResponse(window=update_window_to_pb(now) if now else None)

    async def GetAppUpdateWindow(
        self,
        request: apps_pb2.GetAppUpdateWindowRequest,
        context: _Ctx,
    ) -> apps_pb2.GetAppUpdateWindowResponse:
        def get_window() -> UpdateWindow | None:
            self._own(request.app_id)
            return self._b.px.apps.update_window(request.app_id)

        window = await self._b.run(get_window)
        return apps_pb2.GetAppUpdateWindowResponse(window=update_window_to_pb(window) if window else None)

    async def RunDueAppUpdates(
        self,
        request: apps_pb2.RunDueAppUpdatesRequest,
        context: _Ctx,
    ) -> apps_pb2.RunDueAppUpdatesResponse:
        now = timestamp_from_pb(request, "now")

        def run_due() -> list[operations_pb2.Operation]:
            return [operation_to_pb(handle.get()) for handle in self._b.px.apps.run_due_updates(now=now)]

        return apps_pb2.RunDueAppUpdatesResponse(operations=await self._b.run_long(run_due))

    # copies, moves, sizes ------------------------------------------------------------------------

    async def CloneApp(self, request: apps_pb2.CloneAppRequest, context: _Ctx) -> apps_pb2.CloneAppResponse:
        # a member's clone is theirs; an admin's clone of someone's app stays that owner's
        owner = current_caller().owner_filter()

        def clone() -> OperationHandle:
            with _hostname_available(request.hostname):
                return self._b.px.apps.clone(
                    request.app_id, hostname=request.hostname, node=request.node or None, owner_id=owner
                )

        op = await self._act(request.app_id, clone)
        return apps_pb2.CloneAppResponse(operation=op)

    async def MigrateApp(self, request: apps_pb2.MigrateAppRequest, context: _Ctx) -> apps_pb2.MigrateAppResponse:
        op = await self._act(
            request.app_id,
            lambda: self._b.px.apps.migrate(
                request.app_id, node=request.node, shutdown_timeout=request.shutdown_timeout_seconds or 180
            ),
        )
        return apps_pb2.MigrateAppResponse(operation=op)

    async def ResizeApp(self, request: apps_pb2.ResizeAppRequest, context: _Ctx) -> apps_pb2.ResizeAppResponse:
        resources = resources_from_pb(request.resources)
        op = await self._act(request.app_id, lambda: self._b.px.apps.resize(request.app_id, resources=resources))
        return apps_pb2.ResizeAppResponse(operation=op)

    # discover and adopt (admin) ------------------------------------------------------------------

    async def DiscoverApps(
        self,
        request: apps_pb2.DiscoverAppsRequest,
        context: _Ctx,
    ) -> apps_pb2.DiscoverAppsResponse:
        found = await self._b.run_long(self._b.px.apps.discover, request.host or None)
        return apps_pb2.DiscoverAppsResponse(containers=[discovered_to_pb(c) for c in found])

    async def AdoptApp(self, request: apps_pb2.AdoptAppRequest, context: _Ctx) -> apps_pb2.AdoptAppResponse:
        caller = current_caller()
        op = await self._b.run(
            _operation(
                lambda: self._b.px.apps.adopt(
                    request.vmid,
                    host=request.host or None,
                    node=request.node or None,
                    catalog_id=request.catalog_id or None,
                    hostname=request.hostname or None,
                    owner_id=caller.id,
                )
            )
        )
        return apps_pb2.AdoptAppResponse(operation=op)

    # reads ---------------------------------------------------------------------------------------

    async def GetApp(self, request: apps_pb2.GetAppRequest, context: _Ctx) -> apps_pb2.GetAppResponse:
        app = await self._b.read(self._own, request.app_id)
        return apps_pb2.GetAppResponse(app=self._messages(app))

    async def ListApps(self, request: apps_pb2.ListAppsRequest, context: _Ctx) -> apps_pb2.ListAppsResponse:
        caller = current_caller()
        owner = request.owner_id or None
        if not caller.is_admin:
            if owner is not None and owner != caller.id:
                raise CallerNotAllowed("members list their own apps only; leave owner_id empty")
            owner = caller.id
        status = app_status_filter_from_pb(request.status)
        page = keyset_request(
            request.page_size,
            request.page_token,
            method="ListApps",
            filters=(status, request.search, request.host, owner),
        )
        repo = self._b.px.store.apps

        def fetch() -> tuple[list[App], bool]:
            # `host` is an id or a name, as everywhere
            host_id = self._b.px.hosts.get(request.host).id if request.host else None

            def rows(after: Cursor | None, limit: int) -> list[App]:
                return repo.list(
                    status=status,
                    search=request.search or None,
                    host_id=host_id,
                    owner_id=owner,
                    after=after,
                    limit=limit,
                )

            if page.size < MAX_PAGE_SIZE:  # one more row tells whether another page follows
                apps = rows(page.after, page.size + 1)
                return apps[: page.size], len(apps) > page.size
            apps = rows(page.after, page.size)
            last = (apps[-1].created_at, apps[-1].id) if len(apps) == page.size else None
            return apps, bool(last and rows(last, 1))

        apps, more = await self._b.run(fetch)
        last_app = (apps[-1].created_at, apps[-1].id) if more and apps else None
        return apps_pb2.ListAppsResponse(
            apps=[self._messages(a) for a in apps], next_page_token=page.next_token(last_app)
        )

    async def GetAppLogs(self, request: apps_pb2.GetAppLogsRequest, context: _Ctx) -> apps_pb2.GetAppLogsResponse:
        def logs() -> str:
            self._own(request.app_id)
            return self._b.px.apps.logs(request.app_id, tail=request.tail or 200, service=request.service or None)

        return apps_pb2.GetAppLogsResponse(text=await self._b.run_long(logs))

    async def GetAppCredentials(
        self,
        request: apps_pb2.GetAppCredentialsRequest,
        context: _Ctx,
    ) -> apps_pb2.GetAppCredentialsResponse:
        def credentials() -> apps_pb2.AppCredentials:
            self._own(request.app_id)
            return credentials_to_pb(self._b.px.apps.credentials(request.app_id))

        return apps_pb2.GetAppCredentialsResponse(credentials=await self._b.run(credentials))
