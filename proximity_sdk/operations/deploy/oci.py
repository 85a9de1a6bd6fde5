"""The OCI strategy of a deploy: a native OCI application container (PVE >= 9.1).

A *plan* (``app.config["oci"]``, no secret in it) is what the container runs: the image
reference, the environment as templates (``${NAME}`` names an app secret, filled in only when the
``env`` parameter is sent), the container ports and the main one. A catalog app has a plan when it
is one service that an application container can run as is (:func:`catalog_plan` says why not
otherwise); ``px.apps.deploy_image`` always has one (:func:`image_plan`).

The deploy chooses this strategy or compose at its ``place`` step, once the node is known
(:func:`proximity_sdk.operations.deploy.kind.choose_runtime`). The OCI steps (:func:`deploy_oci`)
use the Proxmox API, and the node shell only when the host has one, to record the container's
console output (:func:`proximity_sdk.operations.oci.keep_console`: Proxmox keeps none); without a
node shell the app deploys and runs all the same, with no console log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proximity_sdk.engine.context import OperationContext, emitter
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError, ValidationError
from proximity_sdk.models._duration import DURATION_EXAMPLES, grace_seconds
from proximity_sdk.models._requests import check_reference
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.settings import Settings
from proximity_sdk.operations.deploy.common import app_url, create_journalled
from proximity_sdk.operations.oci import keep_console, oci_health
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.containers import spec_from_settings, start_container, wait_for_address
from proximity_sdk.proxmox.oci import check_env, configure_runtime, pull_image
from proximity_sdk.proxmox.vmids import VmidAllocator

__all__ = ["OCI_STEPS", "catalog_plan", "deploy_oci", "image_plan", "oci_ports", "resolve_env"]

OCI_STEPS = ("place", "reserve", "image", "create", "configure", "console", "start", "address", "health")

# service keys an application container honours (or that do not matter to it); any other key
# (command, entrypoint, user, build, privileged, ...) needs compose to mean what it says
_SERVICE_KEYS = frozenset(
    {
        "image",
        "environment",
        "ports",
        "volumes",
        "restart",
        "container_name",
        "healthcheck",
        "labels",
        "expose",
        "stop_grace_period",
        "logging",
    }
)
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def resolve_env(template: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """The environment to send: compose-style ``${NAME}``, ``${NAME:-default}`` and ``$NAME``
    filled from the app's secrets, ``$$`` as ``$``. Holds secrets: never log the result."""

    def fill(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match[1] or match[3]
        value = secrets.get(name)
        return value if value else (match[2] or "")

    return {name: _INTERPOLATION.sub(fill, value) for name, value in template.items()}


# catalog entries -------------------------------------------------------------------------------


def _image_reference(image: str) -> str | None:
    """The pullable reference of a compose image: a missing tag is ``latest`` (as docker takes it)."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    reference = image if ":" in last else f"{image}:latest"
    try:
        return check_reference(reference)
    except ValidationError:
        return None


def _port_pairs(items: Any) -> list[tuple[int | None, int]] | str:
    """(host port or None, container port) of compose ``ports`` items; a reason when one is a range."""
    pairs: list[tuple[int | None, int]] = []
    for item in items or ():
        if isinstance(item, int):
            pairs.append((None, item))
            continue
        if isinstance(item, dict):
            target, published = item.get("target"), item.get("published")
            if not str(target).isdigit():
                return f"port {item!r} is not a single port"
            host = int(str(published)) if published is not None and str(published).isdigit() else None
            pairs.append((host, int(str(target))))
            continue
        parts = str(item).split("/", 1)[0].split(":")
        container, host_text = parts[-1], parts[-2] if len(parts) >= 2 else None
        if not container.isdigit() or (host_text is not None and host_text and not host_text.isdigit()):
            return f"port {item!r} is a range or not a port"
        pairs.append((int(host_text) if host_text else None, int(container)))
    return pairs


def _volume_problem(volumes: Any) -> str | None:
    for item in volumes or ():
        if isinstance(item, dict):
            if item.get("type", "volume") != "volume":
                return f"it mounts {item.get('source')!r} from the host ({item.get('type')})"
            continue
        source = str(item).split(":", 1)[0] if ":" in str(item) else ""
        if source.startswith((".", "/", "~")):
            return f"it bind-mounts {source!r} from the host"
    return None


def catalog_plan(
    entry: CatalogApp, compose: Mapping[str, Any], secrets: Mapping[str, str]
) -> tuple[dict[str, Any] | None, str]:
    """(plan, reason): the OCI plan of a rendered catalog app, or None and why it needs compose."""
    services: dict[str, Any] = compose.get("services") or {}
    if len(services) != 1:
        return None, f"{entry.id} has {len(services)} services; a native OCI container runs one image"
    extra = sorted(set(compose) - {"services", "volumes", "networks", "name"})
    if extra:
        return None, f"{entry.id} uses compose {', '.join(extra)}"
    name, service = next(iter(services.items()))
    unknown = sorted(set(service) - _SERVICE_KEYS)
    if unknown:
        return None, f"service {name} of {entry.id} uses {', '.join(unknown)}, which needs compose"
    image = service.get("image")
    reference = _image_reference(image) if isinstance(image, str) else None
    if reference is None:
        return None, f"image {image!r} of {entry.id} is not a tagged reference PVE can pull"
    problem = _volume_problem(service.get("volumes"))
    if problem:
        return None, f"{entry.id}: {problem}"
    pairs = _port_pairs(service.get("ports"))
    if isinstance(pairs, str):
        return None, f"{entry.id}: {pairs}"
    env: dict[str, str] = {}
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            continue  # taken from compose's own environment: nothing to pass
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        check_env(resolve_env(env, secrets))
    except ValidationError as exc:
        return None, f"{entry.id}: {exc.message}"
    ports = list(dict.fromkeys(container for _, container in pairs))
    main = next((c for h, c in pairs if h is not None and h == entry.main_port), None)
    if main is None:
        main = entry.main_port if entry.main_port in ports else (ports[0] if ports else None)
    plan = {"image": reference, "env": env, "ports": ports, "main_port": main, "service": name}
    if "stop_grace_period" in service:  # how long a stop waits before it kills (operations/_stop.py)
        try:
            plan["stop_grace_seconds"] = grace_seconds(service["stop_grace_period"])
        except ValueError as exc:
            raise ValidationError(
                f"{entry.id}: {exc}", field="stop_grace_period", hint=f"Fix the catalog entry: {DURATION_EXAMPLES}"
            ) from None
    return plan, f"{entry.id} is one image ({reference})"


def image_plan(
    reference: str, *, environment: Mapping[str, str], secret_names: set[str], ports: list[int]
) -> dict[str, Any]:
    """The plan of ``px.apps.deploy_image``: secret-named variables are referenced, not stored."""
    env = {
        name: ("${" + name + "}" if name in secret_names else value.replace("$", "$$"))
        for name, value in environment.items()
    }
    name = reference.rsplit("/", 1)[-1].split(":", 1)[0]
    return {
        "image": reference,
        "env": env,
        "ports": list(ports),
        "main_port": ports[0] if ports else None,
        "service": name,
    }


def oci_ports(plan: Mapping[str, Any]) -> tuple[Port, ...]:
    return tuple(Port(service=str(plan.get("service") or "app"), port=int(p)) for p in plan.get("ports") or ())


# the steps ---------------------------------------------------------------------------------------


def deploy_oci(
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
    """The steps after ``reserve``: image, create, configure, start, address, health; then the record."""
    store = services.store
    host_id = app.host_id
    plan: dict[str, Any] = dict(app.config["oci"])

    with ctx.step("image"):
        volid = pull_image(
            client, node, storage=settings.template_storage, reference=str(plan["image"]), emit=emitter(ctx)
        )

    with ctx.step("create"):
        spec = spec_from_settings(
            settings,
            vmid=vmid,
            hostname=app.hostname,
            ostemplate=volid,
            resources=app.resources,
            address=address,
            description=f"Proximity app {app.id} ({plan['image']}, native OCI)",
        )
        # nothing in an application container reads SSH keys or a root password
        spec = spec.model_copy(update={"ssh_public_keys": ()})

        vmid = create_journalled(ctx, store, client, allocator, app=app, node=node, spec=spec)

    with ctx.step("configure"):
        secrets = {name: value.get_secret_value() for name, value in store.apps.secrets(app.id).items()}
        env = resolve_env(plan.get("env") or {}, secrets)
        # an application container has no DHCP client or network manager: the host configures it
        count = configure_runtime(client, node, vmid, env=env, net0=spec.net.property_string() + ",host-managed=1")
        used = sum(1 for value in (plan.get("env") or {}).values() if "$" in value)
        ctx.event(
            f"runtime environment set ({count} variables, {used} from the app's secrets); network managed by the host"
        )

    with ctx.step("console"):
        console = keep_console(ctx, services, app, node, vmid)

    with ctx.step("start"), ctx.node_slot(host_id, node):
        start_container(client, node, vmid, emit=emitter(ctx))

    with ctx.step("address"):
        try:
            address = wait_for_address(client, node, vmid, emit=emitter(ctx), static_address=address)
        except ProximityError:
            oci_health(ctx, client, node, vmid)  # an entrypoint that exited says so, rather than "no address"
            raise
        with ctx.unit():
            store.apps.patch(app.id, address=address)
            ctx.event(f"address {address}")

    with ctx.step("health"):
        oci_health(ctx, client, node, vmid)

    main_port = plan.get("main_port")
    config = {
        **app.config,
        "runtime": "oci",
        "template": volid,
        "main_port": main_port,
        "ports": [p.model_dump() for p in oci_ports(plan)],
        **console,
    }
    # the record, its reservations and the journal's hand-over to it: all of it or none
    with ctx.unit():
        store.apps.patch(
            app.id,
            status=AppStatus.RUNNING,
            address=address,
            url=app_url(address, main_port),
            ports=oci_ports(plan),
            vmid=vmid,
            node=node,
            config=config,
        )
        store.reservations.attach_vmid(host_id, vmid, app_id=app.id)
        if settings.pool() is not None and address:
            store.reservations.attach_address(address, app_id=app.id)
        ctx.forget_kinds("container", "vmid", "address", "console_log")  # handed over to the app's record
    return {"app_id": app.id}
