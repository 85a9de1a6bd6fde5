"""Proxmox task ids (UPIDs): PVE's 9 fields and PBS's 10.

PVE (pve-common ``PVE/UPID.pm``)::

    UPID:node:pid:pstart:starttime:type:id:user:

PBS (proxmox-rest-server ``worker_task.rs``) adds a task counter after ``pstart``::

    UPID:node:pid:pstart:task_id:starttime:type:id:user:

Numbers are hex. ``id`` may be empty; ``user`` is ``user@realm`` or ``user@realm!token``.
What follows the last colon is kept as ``comment`` (empty in every UPID Proxmox makes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from proximity_sdk.errors import ValidationError

__all__ = ["Upid", "is_upid"]

_NODE = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_PVE = re.compile(
    rf"^UPID:(?P<node>{_NODE}):(?P<pid>[0-9A-Fa-f]{{8}}):(?P<pstart>[0-9A-Fa-f]{{8,9}}):"
    r"(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s/]+):(?P<id>[^:\s/]*):(?P<user>[^:\s/]+):(?P<comment>[^:]*)$"
)
_PBS = re.compile(
    rf"^UPID:(?P<node>{_NODE}\.?):(?P<pid>[0-9A-Fa-f]{{8}}):(?P<pstart>[0-9A-Fa-f]{{8,9}}):"
    r"(?P<task_id>[0-9A-Fa-f]{8,16}):(?P<starttime>[0-9A-Fa-f]{8}):(?P<type>[^:\s]+):(?P<id>[^:\s]*):"
    r"(?P<user>[^:\s]+):(?P<comment>[^:]*)$"
)


def is_upid(text: object) -> bool:
    """True if ``text`` looks like a UPID (PVE or PBS)."""
    return isinstance(text, str) and bool(_PVE.match(text) or _PBS.match(text))


@dataclass(frozen=True, slots=True)
class Upid:
    """A parsed task id. ``str(upid)`` gives back the exact text Proxmox sent."""

    raw: str
    product: Literal["pve", "pbs"]
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    token: str | None
    comment: str
    task_id: int | None = None

    @classmethod
    def parse(cls, text: object) -> Upid:
        """Parse a UPID; a :class:`ValidationError` (field ``upid``) when it is not one."""
        if not isinstance(text, str):
            raise ValidationError(f"task id {text!r} is not a string", field="upid")
        product: Literal["pve", "pbs"]
        match = _PVE.match(text)
        product = "pve"
        if match is None:
            match = _PBS.match(text)
            product = "pbs"
        if match is None:
            raise ValidationError(
                f"{text!r} is not a Proxmox task id (UPID)",
                field="upid",
                hint="A UPID looks like UPID:pve1:0001A2B3:00C0FFEE:6650A1B2:vzcreate:105:root@pam:",
            )
        groups = match.groupdict()
        user, _, token = groups["user"].partition("!")
        return cls(
            raw=text,
            product=product,
            node=groups["node"],
            pid=int(groups["pid"], 16),
            pstart=int(groups["pstart"], 16),
            starttime=int(groups["starttime"], 16),
            type=groups["type"],
            id=groups["id"],
            user=user,
            token=token or None,
            comment=groups["comment"],
            task_id=int(groups["task_id"], 16) if product == "pbs" else None,
        )

    @property
    def vmid(self) -> int | None:
        """The guest id when the task's id is one (most guest tasks), else None."""
        return int(self.id) if self.id.isdigit() else None

    def __str__(self) -> str:
        return self.raw
