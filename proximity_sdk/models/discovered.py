"""Containers found on a Proxmox host that no app record manages (``px.apps.discover``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from proximity_sdk.models._html import HtmlRepr
from proximity_sdk.models.resources import Resources

__all__ = ["DiscoveredContainer"]


class DiscoveredContainer(HtmlRepr, BaseModel):
    """An LXC container (not a template) that Proximity does not manage: a candidate for
    ``px.apps.adopt(vmid, host=host_id, node=node)``.

    ``status`` is Proxmox's: ``running``, ``stopped``, or ``unknown`` when its node is offline.
    ``resources`` are the configured limits (cores, memory, root disk), not the usage."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    host: str
    node: str
    vmid: int
    name: str | None = None
    status: str
    tags: tuple[str, ...] = ()
    lock: str | None = None
    resources: Resources = Resources()
    uptime: int | None = None
