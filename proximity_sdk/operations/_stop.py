"""How Proximity stops an app's container: the app's own default, or what the caller gave.

- a compose app (an OS container, systemd as PID 1): a clean shutdown within 60 s; without
  ``force`` a container that does not stop in time fails the stop and keeps running.
- a native OCI app (the image's entrypoint as PID 1): ``docker stop`` semantics, as users of OCI
  images expect. PVE's shutdown sends the image's stop signal (``lxc.signal.halt``), and a PID 1
  without a handler for it never ends: the kernel drops a signal PID 1 does not handle. So the
  default is the catalog service's ``stop_grace_period`` (recorded in the app's plan at deploy as
  ``stop_grace_seconds``), else Docker's 10 s, then a kill (PVE's ``forceStop``: see
  :func:`proximity_sdk.proxmox.containers.shutdown_container` and docs/fidelity.md row R6).

Explicit values win: ``force=False`` keeps an OCI app running when it ignores the signal, and
``timeout=N`` replaces the grace period. Every place Proximity shuts an app down itself (stop,
restart, restore, the restart mode of a migration of an OCI app) takes its timeout from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from proximity_sdk.models.app import App
from proximity_sdk.operations.oci import is_oci

__all__ = [
    "COMPOSE_SHUTDOWN_SECONDS",
    "DOCKER_GRACE_SECONDS",
    "StopPolicy",
    "oci_grace",
    "shutdown_seconds",
    "stop_policy",
]

#: the clean-shutdown wait of a compose app (PVE's own default for ``status/shutdown``)
COMPOSE_SHUTDOWN_SECONDS = 60
#: ``docker stop``'s default grace period, for an OCI app whose service names none
DOCKER_GRACE_SECONDS = 10


@dataclass(frozen=True)
class StopPolicy:
    """``timeout``: seconds of clean shutdown; ``force``: kill after them (else fail)."""

    timeout: int
    force: bool


def oci_grace(app: App) -> int:
    """The OCI app's grace period: its service's ``stop_grace_period`` as recorded at deploy, or 10 s."""
    plan = app.config.get("oci")
    value = plan.get("stop_grace_seconds") if isinstance(plan, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return DOCKER_GRACE_SECONDS


def stop_policy(app: App, *, force: bool | None = None, timeout: int | None = None) -> StopPolicy:
    """The app's default stop, overridden by what is not None."""
    default = StopPolicy(oci_grace(app), True) if is_oci(app) else StopPolicy(COMPOSE_SHUTDOWN_SECONDS, False)
    return StopPolicy(default.timeout if timeout is None else timeout, default.force if force is None else force)


def shutdown_seconds(app: App, compose_seconds: int) -> int:
    """The clean-shutdown wait where Proximity stops the app itself and kills after it (restart,
    restore): the OCI app's grace period, or ``compose_seconds`` for a compose app."""
    return oci_grace(app) if is_oci(app) else compose_seconds
