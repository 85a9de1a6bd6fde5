"""Journal entries shared by the kinds that create a container (deploy, native OCI deploy)."""

from __future__ import annotations

from collections.abc import Callable

from proximity_sdk.engine.context import OperationContext
from proximity_sdk.store import Store

__all__ = ["follow_vmid_change"]


def follow_vmid_change(
    ctx: OperationContext, store: Store, *, app_id: str, host_id: str, node: str
) -> Callable[[int, int], None]:
    """The ``on_vmid_change`` of ``create_with_vmid_retry``: when the VMID was taken meanwhile and the
    create moves to another, the journal and the app's record move with it."""

    def moved(old: int, new: int) -> None:
        # one write, committed before the create request for the new VMID: a crash never finds
        # the journal half moved
        with ctx.unit():
            ctx.record("vmid", host_id=host_id, vmid=new)
            ctx.forget("vmid", vmid=old)
            ctx.forget("container", vmid=old)
            ctx.record("container", host_id=host_id, node=node, vmid=new)
            store.apps.patch(app_id, vmid=new)

    return moved
