"""Operations shown in a real IPython shell: live cards updated as events arrive, static cards once
finished; the SDK's listings return `Listing`. Real deploys through fakepve and the harness sshd."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import RichOutput, capture_output

from proximity_sdk._client import Proximity
from proximity_sdk._notebook import display_live, render_operation_html
from proximity_sdk.errors import OperationFailed, OperationTimeout
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.app import App, AppStatus
from tests.harness.sshd import StandinState
from tests.notebooks._html_check import Parsed, check_safe

HOSTILE = "<script>alert(1)</script> pull access denied"


def _cards(outputs: list[RichOutput]) -> list[Parsed]:
    return [check_safe(o.data["text/html"]) for o in outputs]


def _status(parsed: Parsed) -> str:
    (status,) = parsed.attr_values("data-status")
    return status


def _one_display(outputs: list[RichOutput]) -> str:
    """The outputs are one display and its updates; returns its id."""
    assert outputs and not outputs[0].update
    display_id: str = outputs[0].transient["display_id"]
    assert all(o.update for o in outputs[1:])
    assert {o.transient["display_id"] for o in outputs} == {display_id}
    return display_id


def test_display_live_updates_one_card_and_returns_the_app(
    lab: Proximity, shell: InteractiveShell, standin_state: StandinState
) -> None:
    standin_state.script("docker", match="up -d", sleep=1.0)  # a step long enough to be seen running
    op = lab.apps.deploy("gitea", hostname="git-1")
    with capture_output() as captured:
        app = display_live(op)

    assert isinstance(app, App) and app.status == AppStatus.RUNNING
    assert app == lab.apps.get(app.id)
    outputs = captured.outputs
    _one_display(outputs)
    cards = _cards(outputs)
    assert len(cards) >= 4  # the first card, updates as events came, the final one
    statuses = [_status(c) for c in cards]
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert set(statuses[statuses.index("succeeded") :]) == {"succeeded"}  # never back to running
    final = cards[-1]
    assert "100%" in final.all_text and "deploy succeeded" in final.all_text
    assert final.attr_values("data-step")[:3] == ["place", "reserve", "template"]
    # the cards shown meanwhile followed the operation: one of them was at the slow step
    assert any("▶ up" in c.all_text for c in cards[:-1])
    assert "deploy" in outputs[-1].data["text/plain"] and "succeeded" in outputs[-1].data["text/plain"]


def test_a_running_operation_as_a_cell_result_follows_it_live(
    lab: Proximity, shell: InteractiveShell, standin_state: StandinState
) -> None:
    standin_state.script("docker", match="up -d", sleep=0.5)
    op = lab.apps.deploy("gitea", hostname="git-2")
    shell.user_ns["op"] = op
    with capture_output() as captured:
        result = shell.run_cell("op")

    assert result.success, result.error_in_exec
    assert op.get().finished  # the cell ended with the operation
    outputs = captured.outputs
    _one_display(outputs)
    cards = _cards(outputs)
    assert len(cards) >= 2 and _status(cards[0]) in {"pending", "running"}
    assert _status(cards[-1]) == "succeeded"


def test_a_finished_operation_shows_one_static_card(lab: Proximity, shell: InteractiveShell) -> None:
    op = lab.apps.deploy("gitea", hostname="git-3")
    op.wait(timeout=60)
    with capture_output() as captured:
        display(op)

    (output,) = captured.outputs
    assert not output.update and "display_id" not in output.transient
    card = check_safe(output.data["text/html"])
    assert _status(card) == "succeeded"
    assert "deploy succeeded" in card.all_text
    assert card.attr_values("data-operation-id") == [op.id]
    assert op._repr_html_() == render_operation_html(op)
    assert _status(check_safe(op._repr_html_())) == "succeeded"


def test_a_failed_operation_shows_the_failure_and_display_live_raises(
    lab: Proximity, shell: InteractiveShell, standin_state: StandinState
) -> None:
    standin_state.script("docker", match="up -d", exit_code=1, stderr=HOSTILE + "\n")
    op = lab.apps.deploy("gitea", hostname="git-4")
    with capture_output() as captured, pytest.raises(OperationFailed) as failure:
        display_live(op)
    assert failure.value.step == "up"

    final = _cards(captured.outputs)[-1]
    assert _status(final) == "failed"
    assert "✗ up" in final.all_text
    assert "<script>alert(1)</script>" in final.all_text  # shown as text (check_safe found no script tag)

    # shown as a cell result, the failure is the card, not a traceback
    shell.user_ns["op"] = op
    with capture_output() as captured:
        result = shell.run_cell("op")
    assert result.success, result.error_in_exec
    (output,) = captured.outputs
    assert _status(check_safe(output.data["text/html"])) == "failed"


def test_display_live_times_out_like_wait_and_the_operation_goes_on(
    lab: Proximity, shell: InteractiveShell, standin_state: StandinState
) -> None:
    standin_state.script("docker", match="up -d", sleep=2.0)
    op = lab.apps.deploy("gitea", hostname="git-5")
    with capture_output() as captured, pytest.raises(OperationTimeout):
        display_live(op, timeout=0.3)
    last = _cards(captured.outputs)[-1]
    assert "stopped watching (timeout)" in last.all_text
    assert not op.get().finished
    assert op.wait(timeout=60).status == AppStatus.RUNNING


def test_outside_a_kernel_display_live_only_waits(lab: Proximity) -> None:
    assert not InteractiveShell.initialized()
    op = lab.apps.deploy("gitea", hostname="git-6")
    app = display_live(op)
    assert app.hostname == "git-6" and app.status == AppStatus.RUNNING


def test_the_sdk_lists_are_listings_that_render(lab: Proximity) -> None:
    app = lab.apps.deploy("gitea", hostname="git-7").wait(timeout=60)
    backup = lab.backups.create(app.id).wait(timeout=60)
    lab.backups.schedule(app.id, cron="0 3 * * *")
    lab.hosts.sync_nodes()
    lists: dict[str, Any] = {
        "hosts": lab.hosts.list(),
        "nodes": lab.nodes.list(),
        "sync_nodes": lab.hosts.sync_nodes(),
        "storages": lab.nodes.storages("pve1"),
        "catalog": lab.catalog.list(),
        "catalog_category": lab.catalog.list(lab.catalog.get("gitea").category),
        "search": lab.catalog.search("git"),
        "categories": lab.catalog.categories(),
        "catalog_errors": lab.catalog.errors,
        "shadowed": lab.catalog.shadowed,
        "apps": lab.apps.list(),
        "discover": lab.apps.discover(),
        "backups": lab.backups.list(app.id),
        "schedules": lab.backups.schedules(),
        "targets": lab.backups.targets.list(),
        "kinds": lab.backups.targets.kinds(),
        "operations": lab.operations.list(),
        "run_due": lab.backups.run_due(),
    }
    for name, value in lists.items():
        assert isinstance(value, Listing), name
        parsed = check_safe(value._repr_html_())
        assert parsed.attr_values("data-count") == [str(len(value))], name
    assert lists["apps"] == [lab.apps.get(app.id)]
    assert lists["backups"] == [backup]
    assert "git-7" in Parsed(lists["apps"]._repr_html_()).all_text
    assert "gitea" in Parsed(lists["search"]._repr_html_()).all_text
    assert "no items" in Parsed(lists["run_due"]._repr_html_()).all_text
    ops = Parsed(lists["operations"]._repr_html_()).all_text
    assert "deploy" in ops and "backup" in ops


def test_a_listing_of_handles_shows_their_operations(lab: Proximity) -> None:
    op = lab.apps.deploy("gitea", hostname="git-8")
    op.wait(timeout=60)
    parsed = check_safe(Listing([op])._repr_html_())
    assert "Operation" in parsed.all_text and "deploy" in parsed.all_text and "succeeded" in parsed.all_text


def test_without_ipython_display_live_only_waits(
    lab: Proximity, shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    # as if IPython were not installed: importing any part of it fails (a shell object still exists,
    # whose publisher would print the card's text to stdout if it were reached)
    for name in [m for m in sys.modules if m.split(".")[0] == "IPython"]:
        monkeypatch.setitem(sys.modules, name, None)
    op = lab.apps.deploy("gitea", hostname="git-9")
    assert display_live(op).status == AppStatus.RUNNING
    assert "deploy" not in capsys.readouterr().out
