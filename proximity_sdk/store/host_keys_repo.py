"""SSH host keys of the hosts' nodes, pinned in the database (table ``host_keys``).

Pinned on first use (``SshAccess.trust_on_first_use``) or accepted explicitly
(``px.hosts.accept_host_key``): every agent replica and every restart checks the nodes against the
same keys, where a key kept in memory was forgotten by the next process (and re-pinned, blindly).
Functions over a :class:`Store`, one transaction each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import HostKeyRow

if TYPE_CHECKING:
    from proximity_sdk.store import Store

__all__ = ["PinnedKey", "known_hosts_lines", "pin_key", "pinned_keys", "replace_keys"]


@dataclass(frozen=True)
class PinnedKey:
    hostname: str
    key_type: str
    key: str
    fingerprint: str
    pinned_at: datetime

    def line(self) -> str:
        return f"{self.hostname} {self.key_type} {self.key}"


def pinned_keys(store: Store, host_id: str) -> list[PinnedKey]:
    with store.session() as s:
        rows = s.execute(
            select(HostKeyRow).where(HostKeyRow.host_id == host_id).order_by(HostKeyRow.hostname, HostKeyRow.key_type)
        ).scalars()
        return [PinnedKey(r.hostname, r.key_type, r.key, r.fingerprint, r.pinned_at) for r in rows]


def known_hosts_lines(store: Store, host_id: str) -> str:
    """The host's pinned keys as known_hosts text."""
    return "".join(k.line() + "\n" for k in pinned_keys(store, host_id))


def pin_key(store: Store, host_id: str, *, hostname: str, key_type: str, key: str, fingerprint: str) -> bool:
    """Pin a key first seen now. False when one of that type was pinned meanwhile (another replica
    won the race): the first one stays, and a different key then answers "changed"."""
    with store.session(immediate=True) as s:
        if s.get(HostKeyRow, (host_id, hostname, key_type)) is not None:
            return False
        s.add(
            HostKeyRow(
                host_id=host_id,
                hostname=hostname,
                key_type=key_type,
                key=key,
                fingerprint=fingerprint,
                pinned_at=utcnow(),
            )
        )
        return True


def replace_keys(store: Store, host_id: str, *, hostname: str, key_type: str, key: str, fingerprint: str) -> None:
    """Make this the one key of ``hostname`` (every other pinned key of that name goes)."""
    with store.session(immediate=True) as s:
        s.execute(delete(HostKeyRow).where(HostKeyRow.host_id == host_id, HostKeyRow.hostname == hostname))
        s.add(
            HostKeyRow(
                host_id=host_id,
                hostname=hostname,
                key_type=key_type,
                key=key,
                fingerprint=fingerprint,
                pinned_at=utcnow(),
            )
        )
