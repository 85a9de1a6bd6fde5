"""``px.apps``: deploy catalog apps and run their everyday lifecycle; every long action is an Operation."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from proximity_sdk._api.apps import AppsAPI
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import BusyError, NotRecordedError, ProximityError, ValidationError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import (
    check_aware_time,
    check_log_tail,
    check_stop_args,
    check_update_window,
)
from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy, parse_app_status
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.update import AppUpdate, UpdateWindow
from proximity_sdk.operations.adopt import discover_containers, forget_adoption, prepare_adoption
from proximity_sdk.operations.clone import submit_clone
from proximity_sdk.operations.deploy.kind import submit_deploy, submit_deploy_image
from proximity_sdk.operations.migrate import submit_migrate
from proximity_sdk.operations.oci import (
    NO_NODE_SHELL,
    is_oci,
)
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.operations.pull import PullKind
from proximity_sdk.operations.resize import submit_resize
from proximity_sdk.operations.update import check_updatable, find_updates, submit_update
from proximity_sdk.proxmox.console_log import read_console
from proximity_sdk.store._keyset import Cursor

__all__ = ["Apps"]

# a logs line longer than this is cut (MAX_LOG_TAIL bounds how many lines)
MAX_LOG_LINE = 8192

_PAGE = 200

log = logging.getLogger("proximity_sdk.apps")


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LOG_LINE else f"{line[:MAX_LOG_LINE]} [line cut]"


class Apps(AppsAPI):
    def __init__(self, services: Services, engine: OperationEngine) -> None:
        self._services = services
        self._engine = engine

    # deploy ---------------------------------------------------------------------------------------

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
    ) -> OperationHandle[App]:
        return submit_deploy(
            self._services,
            self._engine,
            catalog_id,
            hostname=hostname,
            host=host,
            node=node,
            environment=environment,
            resources=resources,
            strategy=strategy,
            owner_id=owner_id,
        )

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
    ) -> OperationHandle[App]:
        return submit_deploy_image(
            self._services,
            self._engine,
            reference,
            hostname=hostname,
            host=host,
            node=node,
            environment=environment,
            ports=ports,
            resources=resources,
            owner_id=owner_id,
        )

    # lifecycle ------------------------------------------------------------------------------------

    def _submit(self, kind: str, app_id: str, params: dict[str, Any] | None = None) -> OperationHandle:
        app = self._services.store.apps.get(app_id)
        return self._engine.submit(
            kind, app_id=app.id, host_id=app.host_id, vmid=app.vmid, owner_id=app.owner_id, params=params
        )

    def start(self, app_id: str) -> OperationHandle[App]:
        return self._submit("start", app_id)

    def stop(self, app_id: str, *, force: bool | None = None, timeout: int | None = None) -> OperationHandle[App]:
        force, timeout = check_stop_args(force=force, timeout=timeout)
        return self._submit("stop", app_id, {"force": force, "timeout": timeout})

    def restart(self, app_id: str) -> OperationHandle[App]:
        return self._submit("restart", app_id)

    def delete(self, app_id: str, *, destroy: bool = True) -> OperationHandle[None]:
        return self._submit("delete", app_id, {"destroy": bool(destroy)})

    # copies, moves and sizes ---------------------------------------------------------------------

    def clone(
        self, app_id: str, *, hostname: str, node: str | None = None, owner_id: str | None = None
    ) -> OperationHandle[App]:
        return submit_clone(self._services, self._engine, app_id, hostname=hostname, node=node, owner_id=owner_id)

    def migrate(self, app_id: str, *, node: str, shutdown_timeout: int = 180) -> OperationHandle[App]:
        return submit_migrate(self._services, self._engine, app_id, node=node, shutdown_timeout=shutdown_timeout)

    def resize(self, app_id: str, *, resources: Resources) -> OperationHandle[App]:
        return submit_resize(self._services, self._engine, app_id, resources=resources)

    # updates ---------------------------------------------------------------------------------------

    def updates(self, *, app_id: str | None = None, pull: bool = True) -> Listing[AppUpdate]:
        apps = [self._services.store.apps.get(app_id)] if app_id is not None else builtins.list(self.iter())
        return Listing(find_updates(self._services, apps, pull=bool(pull), pulled=self._pulled))

    def _pulled(self, app: App) -> dict[str, str] | None:
        """The digests after a ``pull`` operation on the app (one operation at a time per app: a
        pull never runs beside its update or delete). None when another operation holds the app."""
        try:
            handle = self._engine.submit(
                "pull", app_id=app.id, host_id=app.host_id, vmid=app.vmid, owner_id=app.owner_id
            )
        except BusyError:
            log.info("update check of %s: its images are not pulled now, another operation works on it", app.hostname)
            return None
        digests = handle.wait(timeout=PullKind.deadline_seconds)
        return dict(digests or {})

    def update(self, app_id: str, *, version: str | None = None) -> OperationHandle[App]:
        return submit_update(self._services, self._engine, app_id, version=version)

    def set_update_window(self, app_id: str, *, window: UpdateWindow | None) -> UpdateWindow | None:
        check_update_window(window)
        app = self._services.store.apps.get(app_id)
        if window is not None:
            check_updatable(app)
        return self._services.store.update_policies.set(app.id, window)

    def update_window(self, app_id: str) -> UpdateWindow | None:
        return self._services.store.update_policies.get(self._services.store.apps.get(app_id).id)

    def run_due_updates(self, *, now: datetime | None = None) -> Listing[OperationHandle[App]]:
        moment = (check_aware_time(now) or datetime.now(UTC)).astimezone(UTC)
        store = self._services.store
        started: Listing[OperationHandle] = Listing()
        for app_id, window in store.update_policies.all():
            opened = window.opened_at(moment)
            if opened is None or not store.update_policies.claim(app_id, opened):
                continue
            try:
                app = store.apps.get(app_id)
                if app.status != AppStatus.RUNNING:
                    log.info("automatic update of %s skipped in this window: it is %s", app.hostname, app.status.value)
                    continue
                if not find_updates(self._services, [app], pulled=self._pulled):
                    continue
                started.append(submit_update(self._services, self._engine, app.id, version=None))
            except BusyError:
                store.update_policies.release(app_id, opened)
            except ProximityError as exc:
                log.warning("automatic update of app %s could not start: %s", app_id, exc)
        return started

    # discover and adopt ---------------------------------------------------------------------------

    def discover(self, host: str | None = None) -> Listing[DiscoveredContainer]:
        store = self._services.store
        hosts = [store.hosts.get(host)] if host is not None else store.hosts.list()
        return Listing(discover_containers(self._services, hosts))

    def adopt(
        self,
        vmid: int,
        *,
        host: str | None = None,
        node: str | None = None,
        catalog_id: str | None = None,
        hostname: str | None = None,
        owner_id: str | None = None,
    ) -> OperationHandle[App]:
        app = prepare_adoption(
            self._services, vmid, host=host, node=node, catalog_id=catalog_id, hostname=hostname, owner_id=owner_id
        )
        try:
            return self._engine.submit("adopt", app_id=app.id, host_id=app.host_id, vmid=app.vmid, owner_id=owner_id)
        except BaseException:
            forget_adoption(self._services.store, app)
            raise

    # reads ----------------------------------------------------------------------------------------

    def get(self, app_id: str) -> App:
        return self._services.store.apps.get(app_id)

    def iter(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> Iterator[App]:
        host_id = self._services.store.hosts.get(host).id if host is not None else None
        wanted = parse_app_status(status)
        after: Cursor | None = None  # keyset: each page seeks past the last app seen
        while True:
            page = self._services.store.apps.list(
                status=wanted, search=search, host_id=host_id, owner_id=owner_id, after=after, limit=_PAGE
            )
            yield from page
            if len(page) < _PAGE:
                return
            after = (page[-1].created_at, page[-1].id)

    def list(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> Listing[App]:
        parse_app_status(status)
        return Listing(self.iter(status=status, search=search, host=host, owner_id=owner_id))

    def logs(self, app_id: str, *, tail: int = 200, service: str | None = None) -> str:
        check_log_tail(tail)
        app = self._services.store.apps.get(app_id)
        if app.node is None or app.vmid is None:
            raise ValidationError(f"app {app.hostname!r} has no container yet", field="app_id")
        if is_oci(app):
            return self._console_log(app, app.node, app.vmid, tail=tail, service=service)
        if "compose_text" not in app.config:
            raise ValidationError(
                f"app {app.hostname!r} was adopted: Proximity runs no compose project in it",
                field="app_id",
                hint=f"Read its logs on the node (pct enter {app.vmid})",
            )
        if service is not None:
            # checked here, not by compose on the node: the error names the services there are
            services = sorted(json.loads(str(app.config["compose_text"])).get("services") or {})
            if service not in services:
                raise ValidationError(
                    f"app {app.hostname!r} has no service {service!r}",
                    field="service",
                    hint=f"Its services: {', '.join(services)}",
                )
        text = Provisioner(self._services.shells.get(app.host_id), app.node, app.vmid, project=app_project(app)).logs(
            tail=tail, service=service
        )
        return "\n".join(_cut(line) for line in text.split("\n"))

    def _console_log(self, app: App, node: str, vmid: int, *, tail: int, service: str | None) -> str:
        """The end of a native OCI app's console output, from the file its node keeps (Proxmox keeps
        none: ``proxmox/console_log.py``)."""
        if service is not None:
            raise ValidationError(
                f"app {app.hostname!r} runs as a native OCI container: one process, no services to choose from",
                field="service",
                hint="Leave out service: its console log is that one process's output",
            )
        live = f"`pct console {vmid}` on node {node} shows its live console"
        if not app.config.get("console_log"):
            why = app.config.get("console_log_note") or "it was deployed before Proximity recorded console logs"
            if app.config.get("console_log_cause") == NO_NODE_SHELL:
                hint = (
                    "Give it with px.hosts.update(host, ssh=SshAccess(key_file=..., known_hosts=...)), then "
                    f"redeploy the app to have its console recorded; until then {live}"
                )
            else:
                hint = f"Redeploy the app to have its console recorded; until then {live}"
            raise NotRecordedError(
                f"app {app.hostname!r} (native OCI container) has no console log: {why}; Proxmox keeps none", hint=hint
            )
        text = read_console(self._services.shells.get(app.host_id), node, vmid, tail=tail)
        if text is None:
            raise NotRecordedError(
                f"CT {vmid} of app {app.hostname!r} has no console log on node {node} yet: it has not started "
                "there since its console was recorded",
                hint=f"Start the app; {live}",
            )
        return "\n".join(_cut(line.removesuffix("\r")) for line in text.removesuffix("\n").split("\n"))

    def credentials(self, app_id: str) -> AppCredentials:
        store = self._services.store
        app = store.apps.get(app_id)
        return AppCredentials(
            app_id=app.id, root_password=store.apps.root_password(app.id), secrets=store.apps.secrets(app.id)
        )
