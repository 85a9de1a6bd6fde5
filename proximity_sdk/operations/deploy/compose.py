"""The compose strategy of a deploy: an OS container with Docker inside, running the app's compose project.

Its steps after ``place`` and ``reserve`` (:func:`deploy_compose`): template, create, start,
address, docker (Docker and compose installed in the container through the node shell), project,
up, health. The record a catalog app gets for it: :func:`deploy_config`, :func:`requested_resources`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from proximity_sdk.catalog.render import RenderedProject, env_file_text
from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings
from proximity_sdk.operations.deploy.common import app_url, create_journalled
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import spec_from_settings, start_container, wait_for_address
from proximity_sdk.proxmox.templates import ensure_template
from proximity_sdk.proxmox.vmids import VmidAllocator

__all__ = ["COMPOSE_STEPS", "deploy_compose", "deploy_config", "requested_resources"]

COMPOSE_STEPS = ("place", "reserve", "template", "create", "start", "address", "docker", "project", "up", "health")


def deploy_compose(
    ctx: OperationContext,
    services: Services,
    app: App,
    *,
    client: ProxmoxClient,
    settings: Settings,
    allocator: VmidAllocator,
    node: str,
    vmid: int,
    address: str | None,
) -> dict[str, Any]:
    """The steps after ``reserve``: template, create, start, address, docker, project, up, health; then
    the record."""
    store = services.store
    host_id = app.host_id
    config = app.config
    resources = app.resources

    with ctx.step("template"):
        template = config.get("os_template") or settings.default_template
        volid = ensure_template(client, node, storage=settings.template_storage, template=template, emit=emitter(ctx))
        ctx.last_event(f"template {volid}")

    with ctx.step("create"):
        password = secrets.token_urlsafe(24)
        spec = spec_from_settings(
            settings,
            vmid=vmid,
            hostname=app.hostname,
            ostemplate=volid,
            resources=resources,
            address=address,
            password=password,
            description=f"Proximity app {app.id} ({app.catalog_id})",
        )

        vmid = create_journalled(ctx, store, client, allocator, app=app, node=node, spec=spec, root_password=password)

    with ctx.step("start"), ctx.node_slot(host_id, node):
        start_container(client, node, vmid, emit=emitter(ctx))

    with ctx.step("address"):
        address = wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=address)
        with ctx.unit():
            store.apps.patch(app.id, address=address)
            ctx.event(f"address {address}")

    provisioner = Provisioner(
        services.shells.get(host_id),
        node,
        vmid,
        project=app_project(app),
        emit=lambda line: ctx.event(line, level="debug"),
    )
    with ctx.step("docker"):
        provisioner.install_docker(registries=store.hosts.registries(host_id))

    with ctx.step("project"):
        compose_text = str(config["compose_text"])
        env = {name: value.get_secret_value() for name, value in store.apps.secrets(app.id).items()}
        provisioner.write_project(compose_text, env_file_text(env))
        ctx.last_event(f"compose project written to {provisioner.directory} ({len(env)} secrets in .env)")

    with ctx.step("up"):
        provisioner.up()
        digests = provisioner.image_digests()  # what `px.apps.updates()` compares with later

    main_port = config.get("main_port")
    with ctx.step("health"):
        if main_port:
            provisioner.wait_healthy(
                int(main_port), attempts=settings.health_timeout_seconds, path=config.get("health_path")
            )
        else:
            ctx.event("the app declares no port: nothing to check", level="warning")

    ports = tuple(Port.model_validate(p) for p in config.get("ports", ()))
    # the record, its reservations and the journal's hand-over to it: all of it or none
    with ctx.unit():
        store.apps.patch(
            app.id,
            status=AppStatus.RUNNING,
            address=address,
            url=app_url(address, main_port),
            ports=ports,
            vmid=vmid,
            node=node,
            config={**config, "images": digests},
        )
        store.reservations.attach_vmid(host_id, vmid, app_id=app.id)
        if settings.pool() is not None and address:
            store.reservations.attach_address(address, app_id=app.id)
        ctx.forget_kinds("container", "vmid", "address")  # handed over to the app's record
    return {"app_id": app.id}


def deploy_config(
    catalog_app: CatalogApp, rendered: RenderedProject, environment: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What the app record keeps of its catalog entry and rendering (no secrets: those are in .env).
    ``environment``: the settings given at deploy; those that are not secrets are kept, so that an
    update renders the new version with them."""
    ports = [
        Port(service=rendered.main_service, port=p).model_dump()
        for p in dict.fromkeys(catalog_app.ports or ())
        if isinstance(p, int) and 0 < p < 65536
    ]
    return {
        "compose_text": rendered.compose_text(),
        "main_service": rendered.main_service,
        "main_port": rendered.main_port,
        "health_path": catalog_app.health_path,
        "os_template": catalog_app.os_template,
        "ports": ports,
        "environment": {k: v for k, v in (environment or {}).items() if k not in rendered.env},
    }


def requested_resources(catalog_app: CatalogApp, resources: Resources | None, settings: Settings) -> Resources:
    """The container's resources: what was asked (never below the catalog minimum), else the settings'
    default raised to the catalog minimum."""
    given = resources or Resources()
    minimum = {"cores": catalog_app.min_cpu, "memory_mb": catalog_app.min_memory, "disk_gb": catalog_app.min_disk}
    for field, floor in minimum.items():
        value = getattr(given, field)
        if value is not None and floor is not None and value < floor:
            raise ValidationError(
                f"{catalog_app.id} needs at least {floor} for {field}, {value} was asked", field=f"resources.{field}"
            )
    return Resources(
        cores=given.cores or max(settings.default_cores, catalog_app.min_cpu),
        memory_mb=given.memory_mb or max(settings.default_memory_mb, catalog_app.min_memory),
        swap_mb=given.swap_mb if given.swap_mb is not None else settings.default_swap_mb,
        disk_gb=given.disk_gb or max(settings.default_disk_gb, catalog_app.min_disk or 1),
    )
