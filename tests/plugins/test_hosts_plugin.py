"""The first-party hosts plugin, loaded through its entry point and driven by `PluginManager`."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shlex
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from proximity_hosts import plugin as hosts_plugin
from proximity_hosts.hostsfile import BEGIN_MARKER, END_MARKER
from proximity_hosts.names import is_valid_hostname, parse_address

from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.plugins.manager import PluginManager

NOW = datetime(2025, 1, 1, tzinfo=UTC)
FOREIGN = "127.0.0.1 localhost\n# a comment kept as it is\n192.168.1.1   router router.lan\n"


@pytest.fixture
def hosts_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "dns" / "proximity.hosts"
    path.parent.mkdir()
    monkeypatch.setenv("PROXIMITY_HOSTS_FILE", str(path))
    monkeypatch.delenv("PROXIMITY_HOSTS_DOMAIN", raising=False)
    monkeypatch.delenv("PROXIMITY_HOSTS_RELOAD", raising=False)
    return path


@pytest.fixture(scope="module")
def pm() -> PluginManager:
    return PluginManager()


def make_app(
    app_id: str, hostname: str, *, address: str | None = "10.0.0.5", status: AppStatus = AppStatus.RUNNING
) -> App:
    return App(
        id=app_id,
        hostname=hostname,
        status=status,
        host_id="pve",
        address=address,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )


def notify(pm: PluginManager, kind: str, app: App | None, *, app_id: str | None = None) -> None:
    op = Operation(
        id=f"op-{kind}",
        kind=kind,
        status=OperationStatus.SUCCEEDED,
        app_id=app.id if app is not None else app_id,
        created_at=NOW,
        updated_at=NOW,
    )
    pm.notify_operation("after", operation=op, app=app)


def block(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    start, end = lines.index(BEGIN_MARKER), lines.index(END_MARKER)
    return [line for line in lines[start + 1 : end] if not line.startswith("#")]


def test_entry_point_is_installed_and_loaded(pm: PluginManager) -> None:
    [ep] = [ep for ep in importlib.metadata.entry_points(group="proximity") if ep.name == "hosts"]
    assert ep.value == "proximity_hosts.plugin"
    assert ep.dist is not None
    assert ep.dist.name == "proximity-hosts"
    assert "hosts" in pm.names()
    assert ("proximity-hosts", "0.1.0") in pm.distributions()


def test_inactive_without_the_variable(pm: PluginManager, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROXIMITY_HOSTS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    notify(pm, "deploy", make_app("a1", "wiki"))
    notify(pm, "delete", None, app_id="a1")
    assert list(tmp_path.iterdir()) == []


def test_deploy_second_app_update_and_delete(
    pm: PluginManager, hosts_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXIMITY_HOSTS_DOMAIN", ".Lan.")
    notify(pm, "deploy", make_app("a1", "wiki", address="10.0.0.5"))
    assert hosts_file.read_text() == (
        f"{BEGIN_MARKER}\n# written by the proximity-hosts plugin: edits inside this block are overwritten\n"
        f"10.0.0.5 wiki wiki.lan\n{END_MARKER}\n"
    )
    assert oct(hosts_file.stat().st_mode & 0o777) == oct(0o644)

    notify(pm, "clone", make_app("a2", "Blog", address="10.0.0.6/24"))
    assert block(hosts_file) == ["10.0.0.5 wiki wiki.lan", "10.0.0.6 blog blog.lan"]

    notify(pm, "migrate", make_app("a1", "wiki", address="10.0.0.9"))
    assert block(hosts_file) == ["10.0.0.6 blog blog.lan", "10.0.0.9 wiki wiki.lan"]

    state = json.loads((hosts_file.parent / ".proximity.hosts.proximity.json").read_text())
    assert state["entries"] == {"a1": "10.0.0.9 wiki wiki.lan", "a2": "10.0.0.6 blog blog.lan"}

    notify(pm, "delete", None, app_id="a1")  # after a delete the app is None: found by operation.app_id
    assert block(hosts_file) == ["10.0.0.6 blog blog.lan"]
    notify(pm, "delete", None, app_id="a1")  # twice: nothing to do
    notify(pm, "delete", None, app_id="a2")
    assert hosts_file.read_text() == ""  # no app left: the block goes too


def test_stopped_keeps_the_line_vanished_removes_it(pm: PluginManager, hosts_file: Path) -> None:
    notify(pm, "deploy", make_app("a1", "wiki"))
    notify(pm, "stop", make_app("a1", "wiki", status=AppStatus.STOPPED))
    assert block(hosts_file) == ["10.0.0.5 wiki"]
    notify(pm, "start", make_app("a1", "wiki", status=AppStatus.RUNNING, address=None))  # address not known yet
    assert block(hosts_file) == ["10.0.0.5 wiki"]
    notify(pm, "sync", make_app("a1", "wiki", status=AppStatus.VANISHED))
    assert BEGIN_MARKER not in hosts_file.read_text()


def test_foreign_lines_and_mode_are_preserved(pm: PluginManager, hosts_file: Path) -> None:
    hosts_file.write_text(FOREIGN + "10.9.9.9 manual  # no trailing newline")
    hosts_file.chmod(0o640)
    notify(pm, "deploy", make_app("a1", "wiki"))
    text = hosts_file.read_text()
    assert text.startswith(FOREIGN + "10.9.9.9 manual  # no trailing newline\n" + BEGIN_MARKER)
    assert hosts_file.stat().st_mode & 0o777 == 0o640

    # lines a person adds after the block stay after it; the block is replaced where it is
    hosts_file.write_text(hosts_file.read_text() + "10.8.8.8 added-later\n")
    notify(pm, "restart", make_app("a1", "wiki", address="10.0.0.7"))
    lines = hosts_file.read_text().splitlines()
    assert lines[-1] == "10.8.8.8 added-later"
    assert block(hosts_file) == ["10.0.0.7 wiki"]
    assert hosts_file.stat().st_mode & 0o777 == 0o640

    notify(pm, "delete", None, app_id="a1")
    assert hosts_file.read_text() == FOREIGN + "10.9.9.9 manual  # no trailing newline\n10.8.8.8 added-later\n"
    assert sorted(p.name for p in hosts_file.parent.iterdir()) == [
        ".proximity.hosts.proximity.json",
        ".proximity.hosts.proximity.lock",
        "proximity.hosts",
    ]


def test_foreign_bytes_that_are_not_utf8_are_kept(pm: PluginManager, hosts_file: Path) -> None:
    foreign = b"10.0.0.1 latin1-caf\xe9 # \xff\n"
    hosts_file.write_bytes(foreign)
    notify(pm, "deploy", make_app("a1", "wiki"))
    notify(pm, "delete", None, app_id="a1")
    assert hosts_file.read_bytes() == foreign


@pytest.mark.parametrize(
    ("hostname", "address"),
    [
        ("bad_name", "10.0.0.5"),
        ("-wiki", "10.0.0.5"),
        ("a" * 64, "10.0.0.5"),
        ("wiki\n10.6.6.6 evil", "10.0.0.5"),
        ("wiki", "not-an-ip"),
        ("wiki", "0.0.0.0"),
        ("wiki", "10.0.0.5 evil"),
        ("wiki", "224.0.0.1"),
    ],
)
def test_bad_hostname_or_address_is_skipped(
    pm: PluginManager, hosts_file: Path, caplog: pytest.LogCaptureFixture, hostname: str, address: str
) -> None:
    hosts_file.write_text(FOREIGN)
    with caplog.at_level(logging.WARNING, logger="proximity_hosts"):
        notify(pm, "deploy", make_app("a1", hostname, address=address))
    assert hosts_file.read_text() == FOREIGN
    assert "proximity-hosts skipped app a1" in caplog.text


def test_bad_configuration_is_logged_not_raised(
    pm: PluginManager, hosts_file: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXIMITY_HOSTS_DOMAIN", "bad_domain")
    notify(pm, "deploy", make_app("a1", "wiki"))
    monkeypatch.setenv("PROXIMITY_HOSTS_DOMAIN", "lan")
    monkeypatch.setenv("PROXIMITY_HOSTS_RELOAD", "pkill -HUP 'dnsmasq")
    notify(pm, "deploy", make_app("a1", "wiki"))
    assert not hosts_file.exists()
    assert "PROXIMITY_HOSTS_DOMAIN='bad_domain' is not a valid domain name" in caplog.text
    assert "PROXIMITY_HOSTS_RELOAD" in caplog.text


def test_file_the_plugin_cannot_trust_is_left_alone(
    pm: PluginManager, hosts_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = FOREIGN + BEGIN_MARKER + "\n10.0.0.1 someone-else\n"  # END marker lost
    hosts_file.write_text(broken)
    notify(pm, "deploy", make_app("a1", "wiki"))
    assert hosts_file.read_text() == broken
    assert "unmatched or repeated" in caplog.text

    hosts_file.write_text(FOREIGN)
    state = hosts_file.parent / ".proximity.hosts.proximity.json"
    state.write_text("{not json")
    notify(pm, "deploy", make_app("a1", "wiki"))
    assert hosts_file.read_text() == FOREIGN
    assert "delete it to start over" in caplog.text


def test_reload_runs_after_a_change_only(
    pm: PluginManager, hosts_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counter = tmp_path / "reloads"
    script = f"open({str(counter)!r}, 'a').write('x')"
    monkeypatch.setenv("PROXIMITY_HOSTS_RELOAD", shlex.join([sys.executable, "-c", script]))
    notify(pm, "deploy", make_app("a1", "wiki"))
    notify(pm, "backup", make_app("a1", "wiki"))  # same line: no write, no reload
    notify(pm, "update", make_app("a1", "wiki", address="10.0.0.8"))
    assert counter.read_text() == "xx"


@pytest.mark.parametrize("command", ["false", "/nonexistent/reload-dnsmasq", "sleep 30"])
def test_failing_reload_command_does_not_raise(
    pm: PluginManager, hosts_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, command: str
) -> None:
    monkeypatch.setenv("PROXIMITY_HOSTS_RELOAD", command)
    monkeypatch.setattr(hosts_plugin, "RELOAD_TIMEOUT", 0.3)
    with caplog.at_level(logging.WARNING, logger="proximity_hosts"):
        notify(pm, "deploy", make_app("a1", "wiki"))
    assert block(hosts_file) == ["10.0.0.5 wiki"]
    assert f"reload command {command!r}" in caplog.text


def test_concurrent_notifications_from_threads(pm: PluginManager, hosts_file: Path) -> None:
    hosts_file.write_text(FOREIGN)
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for round_ in range(5):
                notify(pm, "deploy", make_app(f"app{i}", f"host{i}", address=f"10.1.{round_}.{i + 1}"))
            if i % 2:
                notify(pm, "delete", None, app_id=f"app{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert hosts_file.read_text().startswith(FOREIGN)
    assert sorted(block(hosts_file)) == sorted(f"10.1.4.{i + 1} host{i}" for i in range(0, 10, 2))
    state = json.loads((hosts_file.parent / ".proximity.hosts.proximity.json").read_text())
    assert sorted(state["entries"]) == [f"app{i}" for i in range(0, 10, 2)]
    assert not [p for p in hosts_file.parent.iterdir() if p.name.endswith(".tmp")]


_PROCESS_SCRIPT = """
import sys
from datetime import UTC, datetime
from proximity_sdk.models.app import App, AppStatus
from proximity_sdk.models.operation import Operation, OperationStatus
from proximity_sdk.plugins.manager import PluginManager
now = datetime.now(UTC)
pm = PluginManager()
p = int(sys.argv[1])
for i in range(8):
    app = App(id=f"p{p}-{i}", hostname=f"p{p}-h{i}", status=AppStatus.RUNNING, host_id="pve",
              address=f"10.2.{p}.{i + 1}", created_at=now, updated_at=now, status_changed_at=now)
    op = Operation(id="op", kind="deploy", status=OperationStatus.SUCCEEDED, app_id=app.id,
                   created_at=now, updated_at=now)
    pm.notify_operation("after", operation=op, app=app)
"""


def test_concurrent_notifications_from_processes(hosts_file: Path) -> None:
    env = {**os.environ, "PROXIMITY_HOSTS_FILE": str(hosts_file)}
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_SCRIPT, str(p)], env=env) for p in range(4)]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0, 0]
    assert sorted(block(hosts_file)) == sorted(f"10.2.{p}.{i + 1} p{p}-h{i}" for p in range(4) for i in range(8))


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("wiki", True),
        ("wiki-2.home.arpa", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("", False),
        ("-a", False),
        ("a-", False),
        ("a..b", False),
        ("a_b", False),
        ("10.0.0.5", False),
        ("wïki", False),
        (".".join(["a" * 63] * 4), False),
    ],
)
def test_hostname_validation(name: str, valid: bool) -> None:
    assert is_valid_hostname(name) is valid


def test_address_parsing() -> None:
    assert parse_address("10.0.0.5/24") == "10.0.0.5"
    assert parse_address("fd00:0::5") == "fd00::5"
    assert parse_address("::") is None
    assert parse_address("10.0.0.256") is None
