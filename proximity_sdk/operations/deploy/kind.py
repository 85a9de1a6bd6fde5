"""Deploy: an app into a new LXC container, one kind with two strategies (compose and OCI).

``px.apps.deploy`` (a catalog app) and ``px.apps.deploy_image`` (an OCI image) check the request,
record the app (status ``deploying``) and submit a ``deploy`` operation (:func:`submit_deploy`,
:func:`submit_deploy_image`). The operation places the app on a node and reserves its VMID and
address; at ``place``, once the node is known, it chooses the strategy (:func:`choose_runtime`,
recorded as ``config["runtime"]``): ``oci`` when the app has a plan and the node runs PVE >= 9.1,
else ``compose`` (an event says why; an explicit ``strategy="oci"`` on an older or unknown node
fails there and is rolled back). That strategy's steps follow:
:func:`~proximity_sdk.operations.deploy.compose.deploy_compose` or
:func:`~proximity_sdk.operations.deploy.oci.deploy_oci`.

Every external effect is journalled before or the moment it happens (VMID and address
reservations, the container), so a failure here, or a takeover after a crash, destroys exactly
what this deploy made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from proximity_sdk.catalog.render import render_project
from proximity_sdk.catalog.secrets import is_secret_name
from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.handle import OperationHandle
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError, ValidationError
from proximity_sdk.models._requests import check_ports, check_reference, check_strategy
from proximity_sdk.models.app import App, AppStatus, DeployStrategy
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.operation import Operation
from proximity_sdk.models.resources import Resources
from proximity_sdk.operations._capacity import place
from proximity_sdk.operations.deploy.common import release_effects, release_unjournalled
from proximity_sdk.operations.deploy.compose import COMPOSE_STEPS, deploy_compose, deploy_config, requested_resources
from proximity_sdk.operations.deploy.oci import OCI_STEPS, catalog_plan, deploy_oci, image_plan, oci_ports
from proximity_sdk.proxmox._ctspec import check_hostname
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.oci import check_env, oci_support, require_oci
from proximity_sdk.proxmox.validate import check_node_name
from proximity_sdk.proxmox.vmids import VmidAllocator
from proximity_sdk.store import Store

if TYPE_CHECKING:
    from proximity_sdk.engine.engine import OperationEngine

__all__ = ["AUTO_STEPS", "DeployKind", "choose_runtime", "submit_deploy", "submit_deploy_image"]

# strategy "auto" decides at "place": the operation lists both strategies' steps, in order
AUTO_STEPS = (
    "place",
    "reserve",
    "image",
    "template",
    "create",
    "configure",
    "console",
    "start",
    "address",
    "docker",
    "project",
    "up",
    "health",
)


def submit_deploy(
    services: Services,
    engine: OperationEngine,
    catalog_id: str,
    *,
    hostname: str,
    host: str | None,
    node: str | None,
    environment: Mapping[str, str] | None,
    resources: Resources | None,
    strategy: DeployStrategy,
    owner_id: str | None,
) -> OperationHandle[App]:
    """Check the request, record the app (``deploying``) and submit its deploy; see ``Apps.deploy``."""
    store = services.store
    check_hostname(hostname)
    strategy = check_strategy(strategy)
    if node is not None:
        check_node_name(node)
    if resources is not None and not isinstance(resources, Resources):
        raise ValidationError("resources must be a Resources(...)", field="resources")
    entry = services.catalog.get(catalog_id)
    target = store.hosts.resolve(host)
    settings = store.settings.get()
    wanted = requested_resources(entry, resources, settings)
    rendered = render_project(entry, environment=environment)
    config = deploy_config(entry, rendered, environment)
    plan, why = (None, "") if strategy == "compose" else catalog_plan(entry, rendered.compose, rendered.env)
    if plan is not None:
        config["oci"] = plan
    elif strategy != "compose":
        config["oci_unfit"] = why
    if strategy == "oci":
        if plan is None:
            raise ValidationError(
                f'strategy "oci" is not possible: {why}', field="strategy", hint='Use strategy="auto" or "compose"'
            )
        if node is not None:
            require_oci(services.clients.get(target.id), node)
    elif plan is None:
        services.shells.get(target.id)  # the node shell must be configured: say so now, not at step 7
    # with a plan under "auto" the node shell is needed only if the node is too old: checked then
    steps = {"oci": OCI_STEPS, "compose": COMPOSE_STEPS}.get(strategy if plan is not None else "compose", AUTO_STEPS)
    return _record_and_submit(
        services,
        engine,
        hostname=hostname,
        host_id=target.id,
        owner_id=owner_id,
        catalog=entry,
        resources=wanted,
        config=config,
        secrets=rendered.secrets,
        node=node,
        strategy=strategy,
        steps=steps,
    )


def submit_deploy_image(
    services: Services,
    engine: OperationEngine,
    reference: str,
    *,
    hostname: str,
    host: str | None,
    node: str | None,
    environment: Mapping[str, str] | None,
    ports: Sequence[int],
    resources: Resources | None,
    owner_id: str | None,
) -> OperationHandle[App]:
    """Check the request, record the app (``deploying``) and submit its deploy with the OCI strategy;
    see ``Apps.deploy_image``."""
    store = services.store
    reference = check_reference(reference)
    check_hostname(hostname)
    if node is not None:
        check_node_name(node)
    if resources is not None and not isinstance(resources, Resources):
        raise ValidationError("resources must be a Resources(...)", field="resources")
    check_ports(ports)
    if environment is not None and not isinstance(environment, Mapping):
        raise ValidationError("environment must be a mapping of NAME to value", field="environment")
    env = check_env(dict(environment or {}))
    secret_names = {name for name in env if is_secret_name(name)}
    target = store.hosts.resolve(host)
    settings = store.settings.get()
    given = resources or Resources()
    wanted = Resources(
        cores=given.cores or settings.default_cores,
        memory_mb=given.memory_mb or settings.default_memory_mb,
        swap_mb=given.swap_mb if given.swap_mb is not None else settings.default_swap_mb,
        disk_gb=given.disk_gb or settings.default_disk_gb,
    )
    plan = image_plan(reference, environment=env, secret_names=secret_names, ports=list(dict.fromkeys(ports)))
    if node is not None:
        require_oci(services.clients.get(target.id), node)
    config = {
        "oci": plan,
        "runtime": "oci",
        "image": reference,
        "main_port": plan["main_port"],
        "ports": [p.model_dump() for p in oci_ports(plan)],
        "environment": {k: v for k, v in env.items() if k not in secret_names},
    }
    return _record_and_submit(
        services,
        engine,
        hostname=hostname,
        host_id=target.id,
        owner_id=owner_id,
        catalog=None,
        resources=wanted,
        config=config,
        secrets={name: env[name] for name in secret_names},
        node=node,
        strategy="oci",
        steps=OCI_STEPS,
    )


def _record_and_submit(
    services: Services,
    engine: OperationEngine,
    *,
    hostname: str,
    host_id: str,
    owner_id: str | None,
    catalog: CatalogApp | None,
    resources: Resources,
    config: dict[str, Any],
    secrets: Mapping[str, str],
    node: str | None,
    strategy: DeployStrategy,
    steps: tuple[str, ...],
) -> OperationHandle[App]:
    # the record, its secrets and its operation are one write: never an app without them, even
    # when the process stops between them, and a submit that is refused (the engine closed, ...)
    # leaves no app behind without a delete that could itself fail
    store = services.store
    with store.unit():
        app = store.apps.create(
            hostname=hostname,
            host_id=host_id,
            status=AppStatus.DEPLOYING,
            catalog_id=catalog.id if catalog else None,
            catalog_version=catalog.version if catalog else None,
            owner_id=owner_id,
            resources=resources,
            config=config,
        )
        store.apps.set_secrets(app.id, secrets)
        return engine.submit(
            "deploy",
            app_id=app.id,
            host_id=host_id,
            owner_id=owner_id,
            params={"node": node, "strategy": strategy},
            steps=steps,
        )


# the operation -----------------------------------------------------------------------------------


def choose_runtime(
    ctx: OperationContext, services: Services, app: App, client: ProxmoxClient, node: str, strategy: str
) -> str:
    """``oci`` or ``compose`` for this deploy on ``node``, with an event saying why (in ``place``)."""
    plan = app.config.get("oci")
    if strategy == "compose":
        return "compose"
    if not plan:
        reason = str(app.config.get("oci_unfit") or "the app cannot run as a native OCI container")
        if strategy == "oci":
            raise ValidationError(f'strategy "oci" is not possible: {reason}', field="strategy")
        ctx.event(f"deploying with compose: {reason}")
        return "compose"
    support = oci_support(client, node)
    if support.capable:
        ctx.event(f"deploying as a native OCI container: {support.reason}")
        return "oci"
    if strategy == "oci" or "compose_text" not in app.config:
        raise ValidationError(
            f'strategy "oci" is not possible: {support.reason}',
            field="strategy",
            hint='Use strategy="auto" or "compose", or a node with PVE >= 9.1',
        )
    try:
        services.shells.get(app.host_id)
    except ValidationError as exc:
        raise ValidationError(
            f"{support.reason}; the compose fallback needs the node shell: {exc.message}", field="ssh", hint=exc.hint
        ) from None
    ctx.event(f"falling back to compose (Docker inside the container): {support.reason}", level="warning")
    return "compose"


class DeployKind(OperationKind):
    name: ClassVar[str] = "deploy"
    # the compose strategy's; an OCI or "auto" deploy is submitted with its own steps
    steps: ClassVar[tuple[str, ...]] = COMPOSE_STEPS
    deadline_seconds: ClassVar[float] = 3 * 3600.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def result(self, store: Store, operation: Operation) -> App:
        return store.apps.get(str(operation.result["app_id"]))

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        store = self.services.store
        app = store.apps.get(str(ctx.operation.app_id))
        settings = ctx.settings
        host_id = app.host_id
        client = self.services.clients.get(host_id)
        memory = app.resources.memory_mb or settings.default_memory_mb

        with ctx.step("place"):
            decision = place(
                client,
                store,
                host_id=host_id,
                app_id=app.id,
                memory_mb=memory,
                overcommit=settings.memory_overcommit,
                default_memory_mb=settings.default_memory_mb,
                node=ctx.params.get("node"),
                load=ctx,
            )
            node = decision.node
            ctx.event(f"node {node} chosen: {decision.reason}")
            # operations recorded before strategies existed were compose deploys
            strategy = str(ctx.params.get("strategy") or "compose")
            runtime = choose_runtime(ctx, self.services, app, client, node, strategy)
            # the choice only reads Proxmox: node and runtime are saved together, with the app's record
            config = {**app.config, "runtime": runtime}
            with ctx.unit():
                ctx.save_params(node=node, runtime=runtime)
                store.apps.patch(app.id, config=config)
            app = app.model_copy(update={"config": config})

        with ctx.step("reserve"):
            allocator = VmidAllocator(
                client, store.reservations, host_id=host_id, vmid_min=settings.vmid_min, vmid_max=settings.vmid_max
            )
            vmid = allocator.reserve(operation_id=ctx.id, app_id=app.id, in_use=decision.vmids_in_use)
            address: str | None = None
            pool = settings.pool()
            with ctx.unit():  # the journal, the record, the address and the event: one write
                ctx.record("vmid", host_id=host_id, vmid=vmid)
                store.apps.patch(app.id, vmid=vmid)
                if pool is not None:
                    address = store.reservations.reserve_address(
                        pool, operation_id=ctx.id, app_id=app.id, exclude=[settings.gateway or ""]
                    )
                    ctx.record("address", address=address)
                    ctx.event(f"VMID {vmid} and address {address} reserved")
                else:
                    ctx.event(f"VMID {vmid} reserved")

        deploy = deploy_oci if runtime == "oci" else deploy_compose
        return deploy(
            ctx,
            self.services,
            app,
            client=client,
            settings=settings,
            allocator=allocator,
            node=node,
            vmid=vmid,
            address=address,
        )

    def rollback(self, ctx: OperationContext) -> None:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        release_effects(ctx, self.services, expect_hostname=app.hostname)

    def on_failure(self, ctx: OperationContext, error: BaseException) -> None:
        store = self.services.store
        release_unjournalled(ctx, store)
        try:
            app = store.apps.get(str(ctx.operation.app_id))
        except ProximityError:
            return
        failure = {
            "step": ctx.current_step,
            "message": str(error),
            "log_tail": list(getattr(error, "log_tail", None) or ctx.log_tail)[-20:],
        }
        left = ctx.effects
        store.apps.patch(
            app.id,
            status=AppStatus.ERROR,
            config={**app.config, "last_error": failure},
            vmid=app.vmid if left else None,
            address=None if not left else app.address,
        )
