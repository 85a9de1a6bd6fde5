"""``px.maintenance``: the periodic jobs that keep records true, callable on demand.

The agent schedules them (reconcile every minute or so, the janitor every few minutes, node
sync every few minutes); a script or notebook calls them when it wants. Each returns a report
and never raises because a host cannot be reached: that host is in the report.

- ``reconcile(host=None)``: app status, node and usage from one ``/cluster/resources`` call per
  host; gone containers make their app ``vanished`` (see ``operations/reconcile.py``).
- ``janitor(hard_grace_seconds=None)``: operations past their deadline failed and rolled back,
  dead runners' operations taken over, retired containers destroyed after their grace period
  (see ``operations/janitor.py``).
- ``sync_nodes(host=None)``: node status and capacity of every host (``px.hosts.sync_nodes``
  for one host, raising when it cannot be reached).
"""

from __future__ import annotations

from datetime import timedelta

from proximity_sdk._api.maintenance import MaintenanceAPI
from proximity_sdk._resources.hosts import fetch_nodes
from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.engine.services import Services
from proximity_sdk.errors import ProximityError
from proximity_sdk.models._requests import check_grace_seconds
from proximity_sdk.models.maintenance import HostNodeSync, JanitorReport, NodeSyncReport, ReconcileReport
from proximity_sdk.operations.janitor import Janitor
from proximity_sdk.operations.reconcile import reconcile

__all__ = ["Maintenance"]


class Maintenance(MaintenanceAPI):
    def __init__(self, services: Services, engine: OperationEngine) -> None:
        self._services = services
        self._janitor = Janitor(services, engine)

    def reconcile(self, host: str | None = None) -> ReconcileReport:
        return reconcile(self._services, host)

    def janitor(self, *, hard_grace_seconds: float | None = None) -> JanitorReport:
        seconds = check_grace_seconds(hard_grace_seconds)
        grace = None if seconds is None else timedelta(seconds=seconds)
        return self._janitor.run(hard_grace=grace)

    def stuck_leftovers(self) -> int:
        """Ended operations whose failed rollback the janitor could not finish after several
        attempts, or will not finish alone (an update's or restore's journal): each needs a person
        (the agent's ``proximity_janitor_stuck_leftovers`` gauge)."""
        return self._janitor.stuck_leftovers()

    def sync_nodes(self, host: str | None = None) -> NodeSyncReport:
        store = self._services.store
        hosts = [store.hosts.get(host)] if host is not None else store.hosts.list()
        results = []
        for current in hosts:
            try:
                nodes = fetch_nodes(self._services.clients.get(current.id), current.id)
                store.nodes.replace_for_host(current.id, nodes)
            except ProximityError as exc:
                results.append(
                    HostNodeSync(
                        host_id=current.id, host=current.name, ok=False, error=str(exc), error_kind=type(exc).__name__
                    )
                )
                continue
            results.append(
                HostNodeSync(
                    host_id=current.id,
                    host=current.name,
                    ok=True,
                    nodes=[n.name for n in nodes],
                    online=[n.name for n in nodes if n.status == "online"],
                )
            )
        return NodeSyncReport(hosts=results)
