"""Real mode where the machine cannot run real containers: a clear error before anything starts.

No real node needed: what the machine lacks is simulated (``_lxc.missing``), so these run everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from proximity_sdk.cli import main
from proximity_sdk.sandbox import RealNodeUnavailableError, Sandbox
from proximity_sdk.sandbox._real import _lxc

LACKS = [
    "real mode runs privileged LXC containers: run it as root",
    "missing lxc-start, lxc-attach: apt-get install lxc zstd (or run scripts/real-node)",
]


@pytest.fixture
def no_real_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lxc, "missing", lambda: list(LACKS))


def _sandbox_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("proximity-sandbox-*"))


@pytest.mark.usefixtures("no_real_node")
def test_sandbox_start_refuses_before_starting_anything() -> None:
    before = _sandbox_dirs()
    with pytest.raises(RealNodeUnavailableError) as caught:
        Sandbox.start(real=True)
    text = str(caught.value)
    assert "run it as root" in text and "apt-get install lxc" in text
    assert "scripts/real-node" in (caught.value.hint or "")
    assert _sandbox_dirs() == before  # no directory, no server, no shell was made


@pytest.mark.usefixtures("no_real_node")
def test_cli_sandbox_real_names_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sandbox", "--real", "--once"])
    err = capsys.readouterr().err
    assert code != 0
    assert "cannot run real containers" in err and "run it as root" in err
    assert "scripts/real-node" in err


def test_missing_names_each_lack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_lxc.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(_lxc.shutil, "which", lambda tool: None if tool == "lxc-attach" else f"/usr/bin/{tool}")
    monkeypatch.setattr(_lxc, "BRIDGE", "px-no-such-bridge")
    monkeypatch.setattr(_lxc, "COMMON_CONFIG", tmp_path / "debian.common.conf")
    problems = _lxc.missing()
    assert problems[0] == "real mode runs privileged LXC containers: run it as root"
    assert problems[1].startswith("missing lxc-attach: apt-get install")
    assert "debian.common.conf: apt-get install lxc-templates" in problems[2]
    assert "no bridge px-no-such-bridge" in problems[3] and "lxc-net start" in problems[3]


def test_a_bridge_whose_dhcp_server_died_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The bridge outlives lxc-net's dnsmasq (CI saw every container wait 120 s for a lease): say so first."""
    monkeypatch.setattr(_lxc.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_lxc.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(_lxc, "BRIDGE", "lo")  # a device that exists everywhere
    common = tmp_path / "debian.common.conf"
    common.write_text("")
    monkeypatch.setattr(_lxc, "COMMON_CONFIG", common)
    pidfile = tmp_path / "dnsmasq.pid"
    monkeypatch.setattr(_lxc, "DHCP_PIDFILE", pidfile)
    for stale in (None, "not a pid", str(os.getpid())):  # absent; garbage; a live pid that is not dnsmasq
        if stale is not None:
            pidfile.write_text(stale + "\n")
        problems = _lxc.missing()
        assert len(problems) == 1 and "lo has no DHCP server" in problems[0], problems
        assert f"rm -f {pidfile} /run/lxc/network_up" in problems[0]
    (tmp_path / "dnsmasq").symlink_to(shutil.which("sleep") or "/bin/sleep")
    dnsmasq = subprocess.Popen([str(tmp_path / "dnsmasq"), "30"])  # its name (comm) is dnsmasq
    try:
        pidfile.write_text(f"{dnsmasq.pid}\n")
        assert _lxc.missing() == []
    finally:
        dnsmasq.kill()
        dnsmasq.wait()


@pytest.mark.usefixtures("no_real_node")
def test_the_real_node_tier_skips_only_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.harness.real_node import require_real_node

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="run it as root"):
        require_real_node()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set: the real_node tier must run, not skip"):
        require_real_node()


def test_missing_image_tools_are_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from proximity_sdk.sandbox._real import _images

    monkeypatch.setattr(_lxc, "missing", list)  # LXC is fine here; only the image tools lack
    monkeypatch.setattr(_images.shutil, "which", lambda tool: None if tool in ("umoci", "skopeo") else f"/x/{tool}")
    monkeypatch.setattr(_images, "BUSYBOX", Path("/nonexistent/busybox"))
    before = _sandbox_dirs()
    with pytest.raises(RealNodeUnavailableError) as caught:
        Sandbox.start(real=True)
    text = str(caught.value)
    assert "umoci (apt-get install umoci)" in text and "skopeo (apt-get install skopeo)" in text
    assert "busybox (apt-get install busybox-static)" in text and "docker-registry (apt-get" not in text
    assert "scripts/real-node" in (caught.value.hint or "") and "umoci" in (caught.value.hint or "")
    assert _sandbox_dirs() == before
    assert main(["sandbox", "--real", "--once"]) != 0
    err = capsys.readouterr().err
    assert "apt-get install umoci" in err and "scripts/real-node" in err
