"""Each argument check lives once (``proximity_sdk/models/_requests.py``) and both clients run it:
the same bad input is refused with the same ValidationError locally and through an agent, before
anything is recorded or sent (the remote client here has no agent behind it: a call that got past
its checks would fail with UnavailableError instead)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk import ProximityAPI, Resources, ValidationError
from proximity_sdk._client import Proximity

CASES: dict[str, tuple[Callable[[ProximityAPI], Any], str]] = {
    "deploy strategy": (lambda px: px.apps.deploy("gitea", hostname="git", strategy="docker"), "strategy"),  # type: ignore[arg-type]
    "image reference": (lambda px: px.apps.deploy_image("nginx", hostname="web"), "reference"),
    "migrate timeout": (lambda px: px.apps.migrate("a", node="pve2", shutdown_timeout=0), "shutdown_timeout"),
    "resize resources": (lambda px: px.apps.resize("a", resources={"cores": 2}), "resources"),  # type: ignore[arg-type]
    "update version": (lambda px: px.apps.update("a", version=" "), "version"),
    "update window": (lambda px: px.apps.set_update_window("a", window="03:00"), "window"),  # type: ignore[arg-type]
    "naive now": (lambda px: px.apps.run_due_updates(now=datetime(2030, 1, 1)), "now"),
    "logs tail": (lambda px: px.apps.logs("a", tail=10_001), "tail"),
    "backup note": (lambda px: px.backups.create("a", note="x" * 1025), "note"),
    "backup target": (lambda px: px.backups.create("a", target=3), "target"),  # type: ignore[arg-type]
    "retention": (lambda px: px.backups.schedule("a", cron="0 3 * * *", keep_daily=0), "keep_daily"),
    "janitor grace": (lambda px: px.maintenance.janitor(hard_grace_seconds=-1), "hard_grace_seconds"),
    "two CAs": (lambda px: px.hosts.add("h", url="https://pve:8006", ca_file="ca.pem", ca_pem="x"), "ca_file"),
    "missing CA file": (lambda px: px.hosts.update("h", ca_file="/nonexistent/ca.pem"), "ca_file"),
    "stop timeout": (lambda px: px.apps.stop("a", timeout=0), "timeout"),
    "wait timeout": (lambda px: px.operations.handle("op").wait(timeout=-1), "timeout"),
}


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ProximityAPI]]:
    data = tmp_path_factory.mktemp("checks")
    with (
        Proximity.local(data_dir=data, secret_key=Fernet.generate_key(), entry_points=False) as local,
        Proximity.connect("127.0.0.1:1", token="unused", timeout=2) as remote,
    ):  # no agent: nothing may be sent
        yield {"local": local, "remote": remote}


def _refusal(px: ProximityAPI, call: Callable[[ProximityAPI], Any], monkeypatch: pytest.MonkeyPatch) -> ValidationError:
    # a handle on an unknown operation: the local one checks its record first, the remote one asks the agent
    monkeypatch.setattr(type(px.operations), "handle", _unchecked_handle(px))
    with pytest.raises(ValidationError) as caught:
        call(px)
    return caught.value


def _unchecked_handle(px: ProximityAPI) -> Callable[..., Any]:
    if isinstance(px, Proximity):
        return lambda self, op_id: px.engine.handle(op_id)
    from proximity_sdk._remote._handle import RemoteOperationHandle

    return lambda self, op_id: RemoteOperationHandle(px._conn, op_id)  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_sides_refuse_the_same_input_the_same_way(
    sides: dict[str, ProximityAPI], case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    call, field = CASES[case]
    local, remote = (_refusal(sides[side], call, monkeypatch) for side in ("local", "remote"))
    assert local.field == remote.field == field
    assert str(local) == str(remote)


def test_a_valid_call_gets_past_the_remote_checks(sides: dict[str, ProximityAPI]) -> None:
    """The remote refusals above come from the checks: a valid call reaches the (absent) agent."""
    from proximity_sdk import UnavailableError

    with pytest.raises(UnavailableError):
        sides["remote"].apps.resize("a", resources=Resources(cores=2))


def test_the_ca_file_is_read_on_the_callers_side(sides: dict[str, ProximityAPI], tmp_path: Path) -> None:
    unreadable = tmp_path / "ca.pem"
    unreadable.mkdir()  # a directory: cannot be read as text
    messages = set()
    for px in sides.values():
        with pytest.raises(ValidationError, match="cannot be read") as caught:
            px.hosts.update("h", ca_file=unreadable)
        messages.add(str(caught.value))
    assert len(messages) == 1
