"""Update an app: a newer catalog version and/or new digests of its floating image tags.

Steps: ``check`` (the app runs a compose project; the new project renders with the app's own
secrets and settings), ``safety`` (a backup through the backup targets, before anything changes),
``project`` (the new ``compose.yaml`` and ``.env``), ``pull``, ``recreate`` (``up -d``: compose
recreates what changed), ``health`` (the main port listens), ``record`` (the app's record takes
the new version, compose project and image digests; only now).

Any failure after the safety backup restores it over the container (PVE's overwrite restore), starts
the app again and checks its health, so the app is back in its exact prior state: the container's
config and files come from the backup, and the app's record was never changed. The events say why.
The safety backup is kept (``note`` says which update it guarded); retention prunes it like any other.

``find_updates`` checks for updates: a catalog version newer than the app's, and, for images on a
floating tag (``latest``, no tag, ...), a digest after ``docker compose pull`` in the container that
differs from the one the app was deployed or last updated with.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from proximity_sdk.backup_targets.base import fetch_checked
from proximity_sdk.catalog.render import RenderedProject, env_file_text, render_project
from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ConflictError, NotFoundError, ProximityError, ValidationError
from proximity_sdk.models._requests import check_version
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.backup import BackupStatus
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.update import AppUpdate, ImageUpdate
from proximity_sdk.operations._stop import shutdown_seconds
from proximity_sdk.operations._targets import TargetRegistry
from proximity_sdk.operations.backup import take_backup, undo_backup_effects
from proximity_sdk.operations.deploy.common import app_url
from proximity_sdk.operations.deploy.compose import deploy_config
from proximity_sdk.operations.oci import is_oci
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.operations.restore import app_disk_storage, restore_archive
from proximity_sdk.proxmox.containers import container_status, shutdown_container, start_container, wait_for_address
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow

__all__ = [
    "UPDATE_STEPS",
    "UpdateKind",
    "check_updatable",
    "find_updates",
    "floating",
    "newer_version",
    "render_update",
    "submit_update",
]

UPDATE_STEPS = ("check", "safety", "project", "pull", "recreate", "health", "record")
_FLOATING_TAGS = frozenset({"latest", "stable", "main", "master", "release", "lts", "edge", "nightly"})


def floating(image: str) -> bool:
    """Whether an image reference follows a moving tag (``latest``, none, or a tag without a digit).
    A reference pinned by digest (``@sha256:``) never floats."""
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return not tag or tag in _FLOATING_TAGS or not re.search(r"\d", tag)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def newer_version(candidate: str | None, current: str | None) -> bool:
    """Whether the catalog's ``candidate`` version is newer than the app's ``current`` one
    (numeric parts compared in order; an app without a recorded version takes any)."""
    if candidate is None or candidate == current:
        return False
    if current is None:
        return True
    return _version_key(candidate) > _version_key(current)


def project_images(app: App) -> list[str]:
    """The images of the app's recorded compose project."""
    try:
        compose = json.loads(str(app.config.get("compose_text") or "{}"))
    except ValueError:
        return []
    services = compose.get("services") or {}
    return [str(s["image"]) for s in services.values() if isinstance(s, dict) and s.get("image")]


def render_update(store: Store, app: App, entry: CatalogApp) -> RenderedProject:
    """The app's compose project from ``entry``, with its own secrets and environment settings
    (a secret the new version adds is generated)."""
    secrets = {name: value.get_secret_value() for name, value in store.apps.secrets(app.id).items()}
    environment = {str(k): str(v) for k, v in (app.config.get("environment") or {}).items()}
    return render_project(entry, environment=environment, secrets=secrets)


def check_updatable(app: App) -> None:
    """Refuse an app that Proximity cannot update (adopted, or without a container), saying why."""
    _compose_app(app)


def _compose_app(app: App) -> None:
    if is_oci(app):
        raise ValidationError(
            f"app {app.hostname!r} runs as a native OCI container: Proximity cannot update it yet "
            "(only compose apps are updated)",
            field="app_id",
            hint="Back it up, then deploy the new tag with px.apps.deploy_image(...) and restore the data",
        )
    if "compose_text" not in app.config:
        raise ValidationError(
            f"app {app.hostname!r} was adopted: Proximity runs no compose project in it",
            field="app_id",
            hint="Only apps deployed from the catalog can be updated",
        )
    if app.node is None or app.vmid is None:
        raise NotFoundError(f"app {app.hostname!r} has no container", hint="Delete the app record")


def target_entry(services: Services, app: App, version: str | None) -> CatalogApp:
    """The catalog entry to update ``app`` to; ``version``, when given, must be the catalog's."""
    if app.catalog_id is None:
        raise ValidationError(f"app {app.hostname!r} is not from the catalog", field="app_id")
    entry = services.catalog.get(app.catalog_id)
    if version is not None and version != entry.version:
        raise ValidationError(
            f"the catalog has {entry.id} {entry.version}, not {version}",
            field="version",
            hint="Leave version out to take the catalog's version, or add a catalog with that version",
        )
    return entry


def find_updates(
    services: Services,
    apps: Iterable[App],
    *,
    pull: bool = True,
    pulled: Callable[[App], Mapping[str, str] | None] | None = None,
) -> list[AppUpdate]:
    """The apps among ``apps`` with something newer (see the module docstring). With ``pull``, the
    floating images are pulled in each running app's container to learn their current digests:
    by ``pulled(app)`` when given (a ``pull`` operation; None: not checked now), else inline."""
    found: list[AppUpdate] = []
    for app in apps:
        if "compose_text" not in app.config or app.node is None or app.vmid is None:
            continue
        entry = services.catalog.get(app.catalog_id) if app.catalog_id and app.catalog_id in services.catalog else None
        available = entry.version if entry is not None and newer_version(entry.version, app.catalog_version) else None
        images: list[ImageUpdate] = []
        # an OCI app's image is not pulled in a shell: only a newer catalog version is reported
        moving = [] if is_oci(app) else [image for image in project_images(app) if floating(image)]
        if pull and moving and app.status == AppStatus.RUNNING:
            if pulled is not None:
                digests = dict(pulled(app) or {})  # {}: not checked now (the app is busy)
            else:
                provisioner = Provisioner(
                    services.shells.get(app.host_id), app.node, app.vmid, project=app_project(app)
                )
                provisioner.pull()
                digests = provisioner.image_digests()
            recorded: Mapping[str, str] = app.config.get("images") or {}
            for image in moving:
                now = digests.get(image) or digests.get(_with_latest(image))
                before = recorded.get(image)
                if now and now != before:
                    images.append(ImageUpdate(image=image, current_digest=before, available_digest=now))
        if available is not None or images:
            found.append(
                AppUpdate(
                    app_id=app.id,
                    hostname=app.hostname,
                    catalog_id=app.catalog_id,
                    current_version=app.catalog_version,
                    available_version=available,
                    images=tuple(images),
                    checked_at=utcnow(),
                )
            )
    return found


def _with_latest(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last else image + ":latest"


def _restore_over(ctx: OperationContext, services: Services, app: App, volid: str, storage: str) -> None:
    """Put the safety backup back over the app's container, start it and check its health."""
    assert app.node is not None and app.vmid is not None
    client = services.clients.get(app.host_id)
    node, vmid = app.node, app.vmid
    status = container_status(client, node, vmid)
    if status is not None and status.running:
        shutdown_container(
            client, node, vmid, timeout=shutdown_seconds(app, 60), force_stop_after=True, emit=emitter(ctx)
        )
    ctx.event(f"restoring the safety backup {volid} over CT {vmid}", level="warning")
    restore_archive(ctx, client, node, vmid, volid, storage=storage, overwrite=True)
    start_container(client, node, vmid, emit=emitter(ctx))
    static = app.address if ctx.settings.pool() is not None else None
    wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=static)
    main_port = app.config.get("main_port")
    if main_port:
        Provisioner(
            services.shells.get(app.host_id),
            node,
            vmid,
            project=app_project(app),
            emit=lambda line: ctx.event(line, level="debug"),
        ).wait_healthy(
            int(main_port),
            attempts=ctx.settings.health_timeout_seconds,
            path=app.config.get("health_path"),
        )
    ctx.event(f"CT {vmid} is back as it was before the update")


class UpdateKind(OperationKind):
    """``params``: ``version`` (the catalog version to reach), ``previous_status``.
    ``wait()`` returns the updated :class:`App`."""

    name: ClassVar[str] = "update"
    steps: ClassVar[tuple[str, ...]] = UPDATE_STEPS
    deadline_seconds: ClassVar[float] = 6 * 3600.0

    def __init__(self, services: Services, targets: TargetRegistry) -> None:
        self.services = services
        self.targets = targets

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.app_id))

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        with ctx.step("check"):
            _compose_app(app)
            assert app.node is not None and app.vmid is not None
            status = container_status(self.services.clients.get(app.host_id), app.node, app.vmid)
            if status is None or not status.running:
                raise ConflictError(f"app {app.hostname!r} is not running", hint="Start it, then update it")
            entry = target_entry(self.services, app, ctx.params.get("version"))
            rendered = render_update(store, app, entry)
            ctx.event(
                f"{entry.id} {app.catalog_version or '?'} -> {entry.version}; {len(rendered.generated)} new secret(s)"
            )
        store.apps.update(app.id, status=AppStatus.UPDATING)
        node, vmid = app.node, app.vmid
        with ctx.step("safety"):
            safety = store.backups.create(
                app_id=app.id,
                hostname=app.hostname,
                host_id=app.host_id,
                node=node,
                vmid=vmid,
                note=f"safety backup before update operation {ctx.id}",
            )
            ctx.record("safety", backup_id=safety.id)
            safety = take_backup(
                ctx, self.targets, safety, host_id=app.host_id, node=node, vmid=vmid, steps=(None, None, None)
            )
            ctx.record(
                "guarded", host_id=app.host_id, backup_id=safety.id, storage=app_disk_storage(self.services, app)
            )
            ctx.forget("safety")
        provisioner = Provisioner(
            self.services.shells.get(app.host_id),
            node,
            vmid,
            project=app_project(app),
            emit=lambda line: ctx.event(line, level="debug"),
        )
        with ctx.step("project"):
            provisioner.write_project(rendered.compose_text(), env_file_text(rendered.env))
            ctx.event(f"compose project of {entry.id} {entry.version} written to {provisioner.directory}")
        with ctx.step("pull"):
            provisioner.pull()
        with ctx.step("recreate"):
            provisioner.recreate()
        config = deploy_config(entry, rendered)
        main_port = config.get("main_port")
        with ctx.step("health"):
            if main_port:
                provisioner.wait_healthy(
                    int(main_port), attempts=ctx.settings.health_timeout_seconds, path=config.get("health_path")
                )
            else:
                ctx.event("the app declares no port: nothing to check", level="warning")
        with ctx.step("record"):
            digests = provisioner.image_digests()
            if rendered.generated:
                store.apps.set_secrets(app.id, rendered.secrets)
            kept = {k: v for k, v in app.config.items() if k in ("environment", "compose_project", "retired")}
            ports = tuple(Port.model_validate(p) for p in config.get("ports", ()))
            store.apps.update(
                app.id,
                status=AppStatus.RUNNING,
                catalog_version=entry.version,
                ports=ports,
                config={**config, **kept, "images": digests},
                url=app_url(app.address, main_port) if app.address else app.url,
            )
            ctx.forget("guarded")
            ctx.event(
                f"{app.hostname} runs {entry.id} {entry.version}; images: "
                + (", ".join(f"{image}@{digest[:19]}" for image, digest in digests.items()) or "none")
            )
        return {"app_id": app.id, "version": entry.version, "safety_backup_id": safety.id}

    def rollback(self, ctx: OperationContext) -> None:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        undo_backup_effects(ctx, self.targets)  # an unfinished safety backup
        for effect in reversed(ctx.effects):
            if effect["kind"] == "safety":
                safety = store.backups.get(effect["backup_id"])
                if safety.status != BackupStatus.COMPLETED:
                    store.backups.update(
                        safety.id,
                        status=BackupStatus.FAILED,
                        error="the update failed before its safety backup was complete",
                    )
                ctx.forget("safety")
            elif effect["kind"] == "guarded":
                safety = store.backups.get(effect["backup_id"])
                assert app.node is not None and safety.location is not None
                access = self.targets.access(app.host_id, app.node, emitter(ctx))
                fetched = fetch_checked(self.targets.open(safety.target), access, safety.location, safety.digest)
                _restore_over(ctx, self.services, app, fetched.volid, str(effect["storage"]))
                ctx.forget("guarded")

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        store = self.services.store
        with contextlib.suppress(ProximityError):
            app = store.apps.get(str(ctx.operation.app_id))
            status = (
                container_status(self.services.clients.get(app.host_id), str(app.node), int(app.vmid or 0))
                if app.node and app.vmid
                else None
            )
            real = AppStatus.ERROR if status is None else AppStatus.RUNNING if status.running else AppStatus.STOPPED
            store.apps.update(app.id, status=real)


def submit_update(services: Services, engine: OperationEngine, app_id: str, *, version: str | None) -> OperationHandle:
    """Check what can be checked now (the app, the catalog version, that the project renders), then
    submit the update operation."""
    check_version(version)
    app = services.store.apps.get(app_id)
    _compose_app(app)
    if app.status != AppStatus.RUNNING:
        raise ConflictError(f"app {app.hostname!r} is {app.status.value}, not running", hint="Start it, then update it")
    entry = target_entry(services, app, version)
    render_update(services.store, app, entry)  # a project that cannot render fails here, before anything runs
    return engine.submit(
        "update", app_id=app.id, host_id=app.host_id, vmid=app.vmid, owner_id=app.owner_id, params={"version": version}
    )
