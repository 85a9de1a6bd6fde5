"""Issue 15: a failed rollback's promise ("the janitor will retry what is left") is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from proximity_agent.metrics import AgentMetrics
from proximity_sdk._client import Proximity
from proximity_sdk.errors import OperationFailed
from proximity_sdk.models.app import AppStatus
from proximity_sdk.operations.janitor import STUCK_AFTER
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import OperationRow
from tests.harness.pve import HarnessPve


def _time_passes(px: Proximity, op_id: str) -> None:
    """The backoff is over (the next attempt's time is in the store)."""
    with px.store.session() as s:
        s.execute(
            update(OperationRow)
            .where(OperationRow.id == op_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def test_a_failed_rollback_is_retried_by_the_janitor_until_nothing_is_left(lab: Proximity, pve: HarnessPve) -> None:
    # the deploy fails at start; its rollback's destroy is refused, then the janitor's first
    # attempt is refused too, then the destroy is accepted
    pve.fail("POST", "/status/start", 500, "CT 100 is locked (snapshot)")
    pve.fail("DELETE", "/lxc/100", 500, "can't lock file '/run/lock/lxc/pve-config-100.conf' - got timeout", times=3)
    op = lab.apps.deploy("gitea", hostname="git-1")
    with pytest.raises(OperationFailed):
        op.wait(timeout=60)
    messages = [e.message for e in op.events()]
    assert any("the janitor will retry what is left" in m for m in messages)
    assert {e["kind"] for e in lab.store.operations.side_effects(op.id)} == {"vmid", "container"}
    assert pve.ct(100) is not None
    app = lab.apps.list()[0]
    assert (app.status, app.vmid) == (AppStatus.ERROR, 100)

    first = lab.maintenance.janitor()
    assert first.cleanup_failed == [op.id]
    assert any("attempt 1 failed" in e for e in first.errors)
    # backing off: an immediate second pass does not try again
    assert lab.maintenance.janitor().cleanup_failed == []
    _time_passes(lab, op.id)
    second = lab.maintenance.janitor()
    assert second.cleanup_failed == [op.id]
    assert pve.ct(100) is not None
    _time_passes(lab, op.id)
    third = lab.maintenance.janitor()
    assert third.cleaned_up == [op.id]
    assert third.cleanup_failed == []

    # nothing is left: no container, no reservation, an empty journal, an app without a VMID
    assert pve.ct(100) is None
    assert lab.store.operations.side_effects(op.id) == []
    assert lab.store.reservations.vmid_reservations() == []
    assert lab.apps.get(app.id).vmid is None
    janitor_events = [e for e in op.events() if e.message.startswith("janitor:")]
    assert [e.message.split(" (")[0] for e in janitor_events if "undoing" in e.message] == [
        "janitor: undoing what the rollback left"
    ] * 3
    assert sum("failed" in e.message for e in janitor_events) == 2
    assert janitor_events[-1].message == "janitor: nothing left (attempt 3)"
    # and a later pass has nothing to do
    _time_passes(lab, op.id)
    later = lab.maintenance.janitor()
    assert (later.cleaned_up, later.cleanup_failed) == ([], [])


def test_leftovers_that_keep_failing_count_as_stuck(lab: Proximity, pve: HarnessPve) -> None:
    pve.fail("POST", "/status/start", 500, "CT 100 is locked (snapshot)")
    pve.fail("DELETE", "/lxc/100", 500, "got timeout")  # every time
    op = lab.apps.deploy("gitea", hostname="git-1")
    with pytest.raises(OperationFailed):
        op.wait(timeout=60)
    metrics = AgentMetrics()
    metrics.watch_leftovers(lab.maintenance.stuck_leftovers)
    assert lab.maintenance.stuck_leftovers() == 0
    for _ in range(STUCK_AFTER):
        assert lab.maintenance.janitor().cleanup_failed == [op.id]
        _time_passes(lab, op.id)
    assert lab.maintenance.stuck_leftovers() == 1
    assert metrics.registry.get_sample_value("proximity_janitor_stuck_leftovers") == 1
    backoff = lab.operations.get(op.id)
    assert backoff.status.value == "failed"  # the operation's outcome is never rewritten
