"""The console log of native OCI apps: recorded with the raw key lxc.console.logfile (written into
the container's config file on the node through the node shell), read with px.apps.logs.

The sandbox's Proxmox keeps each container config as a file under the node root the node shell
sees (``PROXIMITY_NODE_ROOT``), takes raw ``lxc.*`` entries an edit added back into the config, and
opens the log file at each start as LXC does; what the entrypoint prints is written into the file
by the test (no process runs in a sandbox container outside real mode: tests/sandbox_real does).
"""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from proximity_sdk._client import Proximity
from proximity_sdk.errors import CommandFailedError, NotRecordedError, OperationFailed, ValidationError
from proximity_sdk.models.app import App
from proximity_sdk.proxmox.console_log import console_log_path, record_console
from proximity_sdk.proxmox.shell import NodeShell
from tests.harness.pve import HarnessPve
from tests.harness.sshd import StandinState

pytestmark = pytest.mark.pve9_only


def _node(standin_state: StandinState, node: str) -> Path:
    """The node's "/" as its shell and the sandbox's Proxmox see it."""
    return standin_state.path / "root" / node


def _deploy(px: Proximity, pve: HarnessPve, standin_state: StandinState, hostname: str = "web-1") -> App:
    pve.version = "9.1.2"
    (_node(standin_state, "pve1") / "etc" / "logrotate.d").mkdir(parents=True, exist_ok=True)
    return px.apps.deploy_image("docker.io/library/nginx:1.27", hostname=hostname, ports=[80]).wait(timeout=60)


def _deploy_op(px: Proximity, app: App) -> str:
    return next(op.id for op in px.operations.list(app_id=app.id) if op.kind == "deploy")


def _log(standin_state: StandinState, node: str, vmid: int) -> Path:
    return _node(standin_state, node) / console_log_path(vmid).lstrip("/")


def test_deploy_names_the_console_log_in_the_config_and_logs_reads_it(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None and app.config["console_log"] is True
    path = console_log_path(app.vmid)
    assert path == f"/var/log/proximity/ct-{app.vmid}.console.log"

    # the raw key sits in the config file on the node, and Proxmox shows it as PVE's API does
    conf = (_node(standin_state, "pve1") / "etc/pve/nodes/pve1/lxc" / f"{app.vmid}.conf").read_text()
    assert conf.endswith(f"lxc.console.logfile: {path}\n") and conf.count("lxc.console.logfile") == 1
    assert "hostname: web-1\n" in conf
    client = withssh._clients.get(app.host_id)  # the answer through the real client
    answer = client.get(f"/nodes/pve1/lxc/{app.vmid}/config")
    assert answer["lxc"] == [["lxc.console.logfile", path]]
    # the start opened (created) the file, as LXC does; the rotation rule was installed
    log = _log(standin_state, "pve1", app.vmid)
    assert log.exists()
    rule = (_node(standin_state, "pve1") / "etc/logrotate.d/proximity-console").read_text()
    assert "/var/log/proximity/ct-*.console.log {" in rule and "copytruncate" in rule and "size 10M" in rule
    events = [e.message for e in withssh.operations.handle(_deploy_op(withssh, app)).events()]
    assert any(f"console output recorded in {path} on node pve1" in m for m in events)

    # what LXC copies from the console: a pty's lines end in CRLF
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(1, 6)))
    assert withssh.apps.logs(app.id, tail=2) == "line 4\nline 5"
    assert withssh.apps.logs(app.id).split("\n")[0] == "line 1"
    with pytest.raises(ValidationError) as caught:
        withssh.apps.logs(app.id, service="nginx")
    assert caught.value.field == "service" and "one process" in caught.value.message


def test_an_oci_app_deployed_without_node_shell_has_no_console_log_and_says_why(
    nossh: Proximity, pve: HarnessPve
) -> None:
    app = nossh.apps.deploy_image("docker.io/library/nginx:1.27", hostname="web-1", ports=[80]).wait(timeout=60)
    assert app.config["console_log"] is False and app.vmid is not None
    assert "lxc" not in pve.ct(app.vmid).config
    with pytest.raises(NotRecordedError) as caught:
        nossh.apps.logs(app.id)
    assert "no console log" in caught.value.message and "SSH access" in caught.value.message
    assert "px.hosts.update(host, ssh=" in caught.value.hint and f"pct console {app.vmid}" in caught.value.hint
    warnings = [e.message for e in nossh.operations.handle(_deploy_op(nossh, app)).events() if e.level == "warning"]
    assert any("is not recorded" in m and "SSH" in m for m in warnings)


def test_an_oci_app_from_before_console_logs_is_told_to_redeploy(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    app = _deploy(withssh, pve, standin_state)
    store = withssh.store  # a record as Proximity wrote it before this change
    old = {k: v for k, v in store.apps.get(app.id).config.items() if not k.startswith("console_log")}
    store.apps.update(app.id, config=old)
    with pytest.raises(NotRecordedError) as caught:
        withssh.apps.logs(app.id)
    assert "deployed before Proximity recorded console logs" in caught.value.message
    assert caught.value.hint.startswith("Redeploy the app")


def test_a_recorded_console_not_yet_written_is_named(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    _log(standin_state, "pve1", app.vmid).unlink()
    with pytest.raises(NotRecordedError, match="has not started there since"):
        withssh.apps.logs(app.id)


def test_delete_removes_the_console_log(withssh: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    log = _log(standin_state, "pve1", app.vmid)
    log.write_text("bye\n")
    withssh.apps.delete(app.id).wait(timeout=60)
    assert not log.exists()
    assert not (_node(standin_state, "pve1") / "etc/pve/nodes/pve1/lxc" / f"{app.vmid}.conf").exists()


def test_migrate_prepares_the_target_and_leaves_no_log_behind(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    pve.add_node("pve2")
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    _log(standin_state, "pve1", app.vmid).write_text("on pve1\n")
    withssh.apps.migrate(app.id, node="pve2").wait(timeout=60)
    # the restarted container opened its log on pve2 (its directory made before the move: LXC fails
    # a start whose log file it cannot open); pve1 keeps nothing of it
    assert _log(standin_state, "pve2", app.vmid).exists()
    assert not _log(standin_state, "pve1", app.vmid).exists()
    _log(standin_state, "pve2", app.vmid).write_text("on pve2\n")
    assert withssh.apps.logs(app.id) == "on pve2"


def test_a_start_whose_log_directory_is_missing_fails_as_lxc_does(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    pve.add_node("pve2")
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    withssh.apps.stop(app.id).wait(timeout=60)
    pve.ct(app.vmid).node = "pve2"  # moved outside Proximity: pve2 has no /var/log/proximity
    withssh.store.apps.update(app.id, node="pve2")  # as reconcile would record it
    with pytest.raises(OperationFailed, match="Failed to open terminal log file"):
        withssh.apps.start(app.id).wait(timeout=60)


def test_restore_names_the_console_log_again(withssh: Proximity, pve: HarnessPve, standin_state: StandinState) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert _log(standin_state, "pve1", app.vmid or 0).exists()
    backup = withssh.backups.create(app.id).wait(timeout=60)
    restored = withssh.backups.restore(backup.id).wait(timeout=60)
    assert restored.vmid is not None and restored.vmid != app.vmid
    # PVE restores no raw lxc.* key for a token (root@pam only): Proximity wrote the new container's own
    path = console_log_path(restored.vmid)
    assert pve.ct(restored.vmid).config["lxc"] == [["lxc.console.logfile", path]]
    assert _log(standin_state, "pve1", restored.vmid).exists()
    assert not _log(standin_state, "pve1", app.vmid or 0).exists()  # the retired container's: dropped

    # in place: the same VMID, its config from the archive without the raw key, written again
    again = withssh.backups.create(app.id).wait(timeout=60)
    in_place = withssh.backups.restore(again.id, in_place=True).wait(timeout=60)
    assert in_place.vmid == restored.vmid and in_place.config["console_log"] is True
    assert pve.ct(restored.vmid).config["lxc"] == [["lxc.console.logfile", path]]


def test_a_clones_copied_key_is_replaced_by_its_own(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState, node_shell: NodeShell
) -> None:
    """The hook a clone needs: PVE's clone copies the raw key (naming the source's file);
    record_console on the clone's VMID, before its start, gives it its own."""
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    clone = pve.add_ct(app.vmid + 50, node="pve1", config={**pve.ct(app.vmid).config, "hostname": "web-2"})
    pve.write_node_table()
    conf = _node(standin_state, "pve1") / "etc/pve/nodes/pve1/lxc" / f"{clone.vmid}.conf"
    assert f"lxc.console.logfile: {console_log_path(app.vmid)}" in conf.read_text()
    record_console(node_shell, "pve1", clone.vmid)
    pve.write_node_table()
    assert pve.ct(clone.vmid).config["lxc"] == [["lxc.console.logfile", console_log_path(clone.vmid)]]
    assert conf.read_text().count("lxc.console.logfile") == 1


def test_record_console_refuses_a_config_with_snapshots_and_an_absent_one(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState, node_shell: NodeShell
) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    pve.ct(app.vmid).snapshots["before"] = {"hostname": "web-1"}
    pve.write_node_table()
    with pytest.raises(CommandFailedError, match="snapshots or pending changes"):
        record_console(node_shell, "pve1", app.vmid)
    with pytest.raises(CommandFailedError, match="CT 999 has no configuration on node pve1"):
        record_console(node_shell, "pve1", 999)


def test_a_failed_deploy_keeps_the_last_console_lines_in_its_events(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    pve.version = "9.1.2"
    pve.exiting_images.add("ghcr.io/example/crash:1")
    # LXC appends to the file (O_APPEND): what is in it when the container starts stays; here it
    # stands for what the entrypoint printed before it exited (no process runs in the sandbox)
    log = _log(standin_state, "pve1", 100)
    log.parent.mkdir(parents=True)
    log.write_text("crash: reading /etc/crash.conf\r\ncrash: no such file, giving up\r\n")
    op = withssh.apps.deploy_image("ghcr.io/example/crash:1", hostname="crash-1", ports=[80])
    with pytest.raises(OperationFailed):
        op.wait(timeout=60)
    warnings = [e.message for e in op.events() if e.level == "warning"]
    assert "CT 100 console: crash: no such file, giving up" in warnings
    assert not log.exists()  # gone with the container


def test_record_console_waits_for_pves_config_lock(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState, node_shell: NodeShell
) -> None:
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    lock = _node(standin_state, "pve1") / "run/lock/lxc" / f"pve-config-{app.vmid}.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as PVE's lock_config holds it during a change
        threading.Timer(0.8, fcntl.flock, (held, fcntl.LOCK_UN)).start()
        started = time.monotonic()
        record_console(node_shell, "pve1", app.vmid)
        assert time.monotonic() - started >= 0.7


def test_a_clone_gets_its_own_console_log_and_a_failed_clone_leaves_none(
    withssh: Proximity, pve: HarnessPve, standin_state: StandinState
) -> None:
    """PVE's clone copies the raw key naming the source's file: the clone's `console` step gives it
    its own before the first start, and the clone's rollback removes that file."""
    app = _deploy(withssh, pve, standin_state)
    assert app.vmid is not None
    _log(standin_state, "pve1", app.vmid).write_bytes(b"source line\r\n")
    clone = withssh.apps.clone(app.id, hostname="web-2").wait(timeout=60)
    assert clone.vmid is not None and clone.config["console_log"] is True
    own = console_log_path(clone.vmid)
    assert pve.ct(clone.vmid).config["lxc"] == [["lxc.console.logfile", own]]
    assert pve.ct(app.vmid).config["lxc"] == [["lxc.console.logfile", console_log_path(app.vmid)]]
    _log(standin_state, "pve1", clone.vmid).write_bytes(b"clone line\r\n")
    assert withssh.apps.logs(clone.id) == "clone line"
    assert withssh.apps.logs(app.id) == "source line"
    steps = withssh.operations.list(app_id=clone.id)[0].steps
    assert steps.index("network") < steps.index("console") < steps.index("start")

    # the second clone's entrypoint exits after its start (which opened its log): the file goes
    # with the rollback
    pve.exiting_images.add("docker.io/library/nginx:1.27")
    with pytest.raises(OperationFailed) as failure:
        withssh.apps.clone(app.id, hostname="web-3").wait(timeout=60)
    assert failure.value.step == "address"
    failed_op = withssh.operations.list(app_id=next(a.id for a in withssh.apps.list() if a.hostname == "web-3"))[0]
    assert any(
        "console log" in e.message and "removed" in e.message for e in withssh.operations.handle(failed_op.id).events()
    )
    logs = sorted(p.name for p in (_node(standin_state, "pve1") / "var/log/proximity").glob("ct-*.console.log"))
    assert logs == sorted({Path(console_log_path(v)).name for v in (app.vmid, clone.vmid)})
