"""`AppsAPI`: ``px.apps``, deploy catalog apps and run their everyday lifecycle."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from proximity_sdk._api.handle import OperationHandleAPI
    from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy
    from proximity_sdk.models.discovered import DiscoveredContainer
    from proximity_sdk.models.resources import Resources
    from proximity_sdk.models.update import AppUpdate, UpdateWindow

__all__ = ["AppsAPI"]


class AppsAPI(Protocol):
    """``px.apps``: deploy catalog apps and OCI images, and run their lifecycle. Every long action
    is an Operation: the method returns its handle at once, ``wait()`` gives the result.

    Through an agent the token's user decides what is allowed: a member reaches its own apps, and
    owns what it creates (``owner_id`` cannot be chosen there: a ValidationError unless None)."""

    # deploy and lifecycle ---------------------------------------------------------------------

    def deploy(
        self,
        catalog_id: str,
        *,
        hostname: str,
        host: str | None = None,
        node: str | None = None,
        environment: Mapping[str, str] | None = None,
        resources: Resources | None = None,
        strategy: DeployStrategy = "auto",
        owner_id: str | None = None,
    ) -> OperationHandleAPI[App]:
        """Deploy a catalog app into a new container. Returns the Operation at once; ``wait()``
        gives the running ``App``. Input is checked before anything is recorded or sent.

        ``strategy``: ``"auto"`` (default) deploys a single-image app as a native OCI container when
        its node runs PVE >= 9.1 and falls back to compose otherwise (an event says why);
        ``"oci"`` insists (refused on an older node: at once when ``node`` is given, else when the
        node is chosen); ``"compose"`` always runs Docker compose in an OS container (docs/oci.md)."""
        ...

    def deploy_image(
        self,
        reference: str,
        *,
        hostname: str,
        host: str | None = None,
        node: str | None = None,
        environment: Mapping[str, str] | None = None,
        ports: Sequence[int] = (),
        resources: Resources | None = None,
        owner_id: str | None = None,
    ) -> OperationHandleAPI[App]:
        """Deploy an OCI image (``registry/name:tag``) as a native OCI application container: the
        node must run PVE >= 9.1 (checked at once when ``node`` is given, else when the node is
        chosen). ``environment`` is passed to the container; secret-named variables (``*_PASSWORD``,
        ``*_SECRET``, ``*_TOKEN``, ...) are stored encrypted as the app's secrets, never in its
        record. ``ports``: the ports the image listens on, the first being the app's URL. No node
        shell is used. ``wait()`` gives the running ``App``. Its stop grace period is Docker's
        default, 10 s (there is no catalog entry to give a ``stop_grace_period``)."""
        ...

    def start(self, app_id: str) -> OperationHandleAPI[App]:
        """Start the app's container; ``wait()`` gives the ``App``."""
        ...

    def stop(self, app_id: str, *, force: bool | None = None, timeout: int | None = None) -> OperationHandleAPI[App]:
        """Shut down cleanly within ``timeout`` seconds; with ``force``, kill it after that.
        ``None`` is the app's own default: a compose app gets 60 s and is not killed (a stop that
        does not end in time fails and the app keeps running); a native OCI app stops as with
        ``docker stop``: its image's stop signal, the service's ``stop_grace_period`` (else 10 s),
        then a kill (docs/oci.md)."""
        ...

    def restart(self, app_id: str) -> OperationHandleAPI[App]:
        """Stop (a clean shutdown, killed after 60 s for a compose app, after its grace period for
        an OCI app) and start again."""
        ...

    def delete(self, app_id: str, *, destroy: bool = True) -> OperationHandleAPI[None]:
        """Destroy the app's container (purge) and forget it. ``destroy=False`` forgets the record
        and leaves the container untouched (for adopted apps)."""
        ...

    # copies, moves and sizes ---------------------------------------------------------------------

    def clone(
        self, app_id: str, *, hostname: str, node: str | None = None, owner_id: str | None = None
    ) -> OperationHandleAPI[App]:
        """Copy the app into a new container and record it as a new app named ``hostname``;
        ``wait()`` gives the NEW app. ``node``: where the clone runs (default: the source's node).
        The clone keeps the data, compose project and generated secrets; it gets its own VMID,
        address and root password. A native OCI app is cloned through the Proxmox API (the node
        shell only gives the clone its own console log; without one it has none): it keeps its
        image, environment and secrets, and has no root password (docs/oci.md). ``owner_id``
        defaults to the source's owner."""
        ...

    def migrate(self, app_id: str, *, node: str, shutdown_timeout: int = 180) -> OperationHandleAPI[App]:
        """Move the app's container to ``node`` of the same cluster. A running app is shut down
        (within ``shutdown_timeout`` seconds), moved and started again; its address may change.
        A native OCI app is stopped as ``stop`` does (its grace period, then a kill; not
        ``shutdown_timeout``), moved offline and started on ``node``, which must run PVE >= 9.1
        (else a ValidationError, field ``node``, before anything is done)."""
        ...

    def resize(self, app_id: str, *, resources: Resources) -> OperationHandleAPI[App]:
        """Change cores, memory, swap and/or grow the disk (fields left None stay); a running app
        takes them live. A smaller disk is refused (Proxmox only grows disks)."""
        ...

    # updates ---------------------------------------------------------------------------------------

    def updates(self, *, app_id: str | None = None, pull: bool = True) -> builtins.list[AppUpdate]:
        """The apps with something newer: a newer catalog version, or (with ``pull``, the default) a
        new digest of a floating image tag (``latest``, ...) after ``docker compose pull`` in the
        app's container. Only running apps are pulled in; ``app_id`` checks one app."""
        ...

    def update(self, app_id: str, *, version: str | None = None) -> OperationHandleAPI[App]:
        """Update a running app to the catalog's version (``version``, when given, must be it) and
        the current digests of its images: a safety backup first, then the new compose project,
        pull, recreate and a health check. If anything fails the safety backup is restored and the
        app runs as before; ``wait()`` then raises ``OperationFailed`` saying why. Generated
        secrets and the settings given at deploy are carried over. ``wait()`` gives the ``App``."""
        ...

    def set_update_window(self, app_id: str, *, window: UpdateWindow | None) -> UpdateWindow | None:
        """Update the app automatically in this weekly maintenance window (UTC), or never
        (``window=None``, the default for every app). In each window the app is checked once
        (``updates``) and updated when something is newer; the agent's scheduler runs the check
        (``run_due_updates``)."""
        ...

    def update_window(self, app_id: str) -> UpdateWindow | None:
        """The app's automatic update window, or None."""
        ...

    def run_due_updates(self, *, now: datetime | None = None) -> Sequence[OperationHandleAPI[App]]:
        """For every app whose update window is open (at ``now``, default: now), once per window:
        check for updates and start one when something is newer. Returns the operations started.
        Safe from several processes: each window is claimed once; a busy app is tried again later
        in the same window; an app that is not running is skipped for that window. Through an
        agent: admin only (the agent's scheduler does it)."""
        ...

    # discover and adopt ---------------------------------------------------------------------------

    def discover(self, host: str | None = None) -> builtins.list[DiscoveredContainer]:
        """Containers (not templates) that no app manages, on every host or on one (id or name),
        with node, status, name, tags and configured resources: one Proxmox request per host.
        Raises the host's error when one cannot be reached."""
        ...

    def adopt(
        self,
        vmid: int,
        *,
        host: str | None = None,
        node: str | None = None,
        catalog_id: str | None = None,
        hostname: str | None = None,
        owner_id: str | None = None,
    ) -> OperationHandleAPI[App]:
        """Make an existing container an app, without changing it. ``hostname``: the app's name
        (default: the container's name; RFC 1123, unique on the host); ``node``: where it is
        expected (checked); ``catalog_id``: what it runs, if it is a catalog app. Returns the
        Operation at once; ``wait()`` gives the ``App`` (``running`` or ``stopped``, with the TCP
        ports found listening). ``delete(app_id, destroy=False)`` forgets it again."""
        ...

    # reads ----------------------------------------------------------------------------------------

    def get(self, app_id: str) -> App:
        """The app with this id (``NotFoundError`` when there is none, or not one of yours)."""
        ...

    def iter(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> Iterator[App]:
        """Every matching app, page by page."""
        ...

    def list(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host: str | None = None,
        owner_id: str | None = None,
    ) -> builtins.list[App]:
        """Every matching app (all pages)."""
        ...

    def logs(self, app_id: str, *, tail: int = 200, service: str | None = None) -> str:
        """The last ``tail`` lines (at most 10000) of the app's compose services, or of a native
        OCI app's console (its one process: no ``service``), through the node shell; a line longer
        than 8192 characters is cut. An OCI app deployed without a node shell (or before Proximity
        recorded consoles) has none: :class:`NotRecordedError` says why."""
        ...

    def credentials(self, app_id: str) -> AppCredentials:
        """The root password and generated secrets (for the app's owner or an admin)."""
        ...
