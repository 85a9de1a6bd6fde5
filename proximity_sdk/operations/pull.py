"""The ``pull`` operation: ``docker compose pull`` in an app's container and the digests pulled.

An update check (``px.apps.updates(pull=True)``, the agent's ``CheckAppUpdates``) learns the
current digests of floating tags by pulling them. That pull runs for minutes and changes what is
in the container, so it is an operation like any other: recorded, one at a time per app (an
update, a delete or a backup of the app and a pull never run together), cancellable, with a
deadline, and visible in the app's history. Nothing to roll back: pulled images only replace the
cached ones; the running containers are not recreated.
"""

from __future__ import annotations

from typing import Any, ClassVar

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.engine.kinds import OperationKind
from proximity_sdk.engine.services import Services
from proximity_sdk.models.operation import Operation
from proximity_sdk.operations.provision import Provisioner, app_project
from proximity_sdk.store import Store

__all__ = ["PullKind"]


class PullKind(OperationKind):
    name: ClassVar[str] = "pull"
    steps: ClassVar[tuple[str, ...]] = ("pull", "digests")
    deadline_seconds: ClassVar[float] = 1800.0 + 300.0

    def __init__(self, services: Services) -> None:
        self.services = services

    def run(self, ctx: OperationContext) -> dict[str, Any]:
        app = self.services.store.apps.get(str(ctx.operation.app_id))
        assert app.node is not None and app.vmid is not None
        provisioner = Provisioner(self.services.shells.get(app.host_id), app.node, app.vmid, project=app_project(app))
        with ctx.step("pull"):
            provisioner.pull()
        with ctx.step("digests"):
            digests = provisioner.image_digests()
        return {"app_id": app.id, "digests": digests}

    def recover(self, ctx: OperationContext) -> dict[str, Any]:
        ctx.event("pulling again (a pull is idempotent)")
        return self.run(ctx)

    def result(self, store: Store, operation: Operation) -> dict[str, str]:
        return dict(operation.result.get("digests") or {})
