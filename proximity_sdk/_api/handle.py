"""`OperationHandleAPI`: what every long action returns at once, locally and through an agent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus

__all__ = ["OperationHandleAPI", "T"]

#: What ``wait()`` returns (``App``, ``Backup``, None, ...); a bare ``OperationHandleAPI`` waits for ``Any``.
#: Covariant: a handle on a deploy is a handle on "something".
R_co = TypeVar("R_co", covariant=True, default=Any)

#: The result type of an implementation (``OperationHandle[T]``, ``RemoteOperationHandle[T]``): ``App``
#: for a deploy, ``Backup`` for a backup, None for a delete; a bare handle (``px.operations.handle(id)``)
#: waits for ``Any``.
T = TypeVar("T", default=Any)


class OperationHandleAPI(Protocol[R_co]):
    """A running (or finished) operation. ``events()`` streams its log, ``wait()`` returns its result
    (typed: ``px.apps.deploy(...)`` is a handle on an ``App``, so ``.wait()`` is an ``App``).
    In Jupyter a handle shows a progress card that follows the operation live."""

    #: the operation's id (``px.operations.get(id)``, ``px.operations.handle(id)``)
    id: str

    def get(self) -> Operation:
        """The operation's record as it is now."""
        ...

    @property
    def status(self) -> OperationStatus:
        """The operation's status as it is now."""
        ...

    def events(self, after: int = 0, *, follow: bool = True, timeout: float | None = None) -> Iterator[OperationEvent]:
        """Every event with ``seq > after``, in order. With ``follow`` (the default) it goes on until
        the operation has finished and its log is drained; ``timeout`` bounds the whole iteration
        (``OperationTimeout``). Through an agent a dropped stream is resumed from the last event
        yielded, so every event comes exactly once."""
        ...

    def wait(self, timeout: float | None = None) -> R_co:
        """Block until the operation ends and return its result (an ``App``, a ``Backup``, or None).

        Raises ``OperationFailed`` (failed step and the Proxmox log tail; what was created has been
        rolled back), ``OperationCancelled``, or ``OperationTimeout`` when ``timeout`` passes first
        (the operation goes on)."""
        ...

    def cancel(self) -> Operation:
        """Ask the operation to stop at its next step (or checkpoint); what it created is rolled
        back. A finished operation is left as it is. Returns the record as it is now."""
        ...
