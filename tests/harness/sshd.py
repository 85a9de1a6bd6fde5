"""Harness: a real OpenSSH sshd on 127.0.0.1 whose PATH starts with the `pct` stand-in.

- ``sshd`` (session): the running server (:class:`Sshd`): a throwaway ed25519 host key, one
  authorized client key, ``SetEnv PATH=<standins>/node:...`` and
  ``PROXIMITY_STANDIN_STATE=<dir>/state``, which is a symlink the ``standin_state`` fixture
  (and ``PROXIMITY_NODE_ROOT=<dir>/state/root``: the node's ``/etc/pve``, ``/var/log/proximity``...
  as ``proximity_sdk/proxmox/console_log.py`` reaches them; the ``pve`` fixture's ``node_root``)
  re-points to a fresh directory for every test.
- ``standin_state`` (function): a :class:`StandinState` for reading what the stand-ins recorded,
  scripting their answers and looking into the stand-in containers (``<state>/ct/<vmid>``). When
  the test also uses the ``pve`` fixture, that Proxmox writes its node table into the state, and
  `pct` answers from it as on Proxmox: a container that does not exist fails, exec and push need a
  running one (``set_status`` then has no effect: change the container in ``pve`` instead).
- ``ssh_access``: an :class:`SshAccess` for the server, nodes ``pve1``/``pve2`` -> 127.0.0.1,
  a known_hosts file that trusts the test host key.
- ``node_shell``: a :class:`NodeShell` on it (fresh state, closed after the test).
- ``tabled_ssh_access`` / ``tabled_node_shell``: the same with each node at its own address
  (``NODE_ADDRESSES``: the sshd listens on all of them) and the ``pve`` fixture writing its node
  table into the test's state, so `pct` answers as on Proxmox: only for containers that exist on
  that node, exec and push only into running ones (see ``proximity_sdk/sandbox/_real/_table.py``).
  Plain ``node_shell`` without ``pve`` keeps the old rule (every container exists and runs).

How the stand-ins work (recording format, containers as chroots, failure rules) is described in
``proximity_sdk/sandbox/standins/_standin.py`` and ``_pct.py``. The sshd runs as the current user (root
here) and needs ``/usr/sbin/sshd`` (Debian package ``openssh-server``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import proximity_sdk.sandbox
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.shell import NodeShell

__all__ = [
    "NODE_ADDRESSES",
    "node_shell",
    "ssh_access",
    "sshd",
    "standin_state",
    "tabled_node_shell",
    "tabled_ssh_access",
]

SSHD = "/usr/sbin/sshd"
STANDINS = Path(proximity_sdk.sandbox.__file__).resolve().parent / "standins"
NODES = ("pve1", "pve2", "pve3")
#: each node's own loopback address: the sshd answers on all of them, and the `pct` stand-in tells
#: the nodes apart by the address its SSH connection came to (``node_addresses`` of the node table)
NODE_ADDRESSES = {"pve1": "127.0.0.1", "pve2": "127.0.0.2", "pve3": "127.0.0.3"}


@dataclass(frozen=True)
class Sshd:
    """A running test sshd."""

    host: str
    port: int
    workdir: Path
    host_key: Path  # private key file
    host_public_key: str  # "ssh-ed25519 AAAA..."
    known_hosts: Path  # trusts host_public_key for [host]:port
    client_key: Path  # private key file authorized for the current user
    state_link: Path  # what PROXIMITY_STANDIN_STATE names on the node
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def user(self) -> str:
        return pwd.getpwuid(os.getuid()).pw_name

    def access(self, nodes: Iterable[str] = NODES) -> SshAccess:
        """How a node shell logs in here, every node in ``nodes`` at this one address."""
        return SshAccess(
            user=self.user,
            port=self.port,
            key_file=str(self.client_key),
            known_hosts=str(self.known_hosts),
            addresses=dict.fromkeys(nodes, self.host),
            connect_timeout=10,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "proximity-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    fields = path.with_suffix(".pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            if sock.recv(64).startswith(b"SSH-2.0-"):
                return True
        time.sleep(0.02)
    raise RuntimeError(f"sshd did not answer on port {port} within 10 s; its log:\n{log.read_text()}")


def start_sshd(workdir: Path, *, port: int | None = None, host_key: Path | None = None, max_sessions: int = 10) -> Sshd:
    """Start an sshd in ``workdir`` (its keys, config, log and state link live there).

    ``port`` reuses a port (e.g. to play a server reinstalled with another host key); ``host_key``
    reuses a host key file; by default both are new. ``max_sessions`` is sshd's MaxSessions
    (10, OpenSSH's default, as on a stock Proxmox node).
    """
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} is missing: install the Debian package openssh-server")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
    workdir.mkdir(parents=True, exist_ok=True)
    if host_key is None:
        host_key = workdir / "host_ed25519"
        _keygen(host_key)
    host_public = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    client_key = workdir / "client_ed25519"
    if not client_key.exists():
        _keygen(client_key)
    (workdir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    idle = workdir / "state-idle"
    idle.mkdir(exist_ok=True)
    state_link = workdir / "state"
    if not state_link.is_symlink():
        state_link.symlink_to(idle)
    log = workdir / "sshd.log"
    last_error = ""
    for _attempt in range(5):
        chosen = port if port is not None else _free_port()
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    *(f"ListenAddress {address}:{chosen}" for address in NODE_ADDRESSES.values()),
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    f"MaxSessions {max_sessions}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    # SHLVL=1 makes the login shell (bash) a nested one, which skips ~/.bashrc:
                    # the test machine's rc files must neither slow every command nor alter PATH.
                    f"SetEnv PATH={STANDINS / 'node'}:/usr/local/bin:/usr/bin:/bin SHLVL=1"
                    f" PROXIMITY_STANDIN_STATE={state_link} PROXIMITY_NODE_ROOT={state_link / 'root'}",
                    "",
                ]
            )
        )
        with log.open("ab") as log_fh:
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log_fh, stderr=subprocess.STDOUT)
        if _wait_ready(chosen, process, log):
            known_hosts = workdir / "known_hosts"
            known_hosts.write_text(
                "".join(f"[{address}]:{chosen} {host_public}\n" for address in NODE_ADDRESSES.values())
            )
            return Sshd(
                host="127.0.0.1",
                port=chosen,
                workdir=workdir,
                host_key=host_key,
                host_public_key=host_public,
                known_hosts=known_hosts,
                client_key=client_key,
                state_link=state_link,
                log=log,
                process=process,
            )
        last_error = log.read_text()
        if port is not None:
            break  # a fixed port: retrying with the same one would fail the same way
    raise RuntimeError(f"sshd did not start; its log:\n{last_error}")


@dataclass(frozen=True)
class StandinCall:
    """One recorded call of a stand-in."""

    tool: str
    vmid: int | None  # the container it ran in (None: on the node)
    argv: tuple[bytes, ...]  # the exact argument bytes, without the tool name
    time: float

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(os.fsdecode(a) for a in self.argv)


class StandinState:
    """One test's stand-in state directory: recordings, scripted answers, container files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self, tool: str | None = None, *, vmid: int | None = None) -> list[StandinCall]:
        """Recorded calls in order, optionally of one tool and/or inside one container."""
        file = self.path / "calls.jsonl"
        if not file.exists():
            return []
        found = []
        for line in file.read_text().splitlines():
            entry = json.loads(line)
            call = StandinCall(
                tool=entry["tool"],
                vmid=int(entry["vmid"]) if entry["vmid"] is not None else None,
                argv=tuple(base64.b64decode(a) for a in entry["argv"]),
                time=entry["time"],
            )
            if (tool is None or call.tool == tool) and (vmid is None or call.vmid == vmid):
                found.append(call)
        return found

    def script(
        self,
        tool: str,
        *,
        match: str | None = None,
        times: int | None = None,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
        sleep: float | None = None,
    ) -> None:
        """Make calls of ``tool`` (whose joined arguments contain ``match``) answer this way.

        Rules are tried in the order they were added; ``times=None`` applies forever.
        """
        rules_dir = self.path / "rules"
        rules_dir.mkdir(exist_ok=True)
        file = rules_dir / f"{tool}.json"
        rules = json.loads(file.read_text()) if file.exists() else []
        rules.append(
            {
                "match": match,
                "times": times,
                "stdout": stdout,
                "stderr": stderr,
                "exit_code": exit_code,
                "sleep": sleep,
            }
        )
        file.write_text(json.dumps(rules))

    def ct_path(self, vmid: int, path: str) -> Path:
        """Where the file ``path`` of stand-in container ``vmid`` lives on this machine."""
        return self.path / "ct" / str(vmid) / path.lstrip("/")

    def write_ct_file(self, vmid: int, path: str, data: bytes) -> None:
        target = self.ct_path(vmid, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def set_status(self, vmid: int, status: str) -> None:
        """The status `pct` reports for the container ("running", "stopped")."""
        (self.path / "ct-status").mkdir(exist_ok=True)
        (self.path / "ct-status" / str(vmid)).write_text(status)

    def set_volume_path(self, volid: str, path: str) -> None:
        """What `pvesm path <volid>` prints."""
        file = self.path / "pvesm-paths.json"
        paths = json.loads(file.read_text()) if file.exists() else {}
        paths[volid] = path
        file.write_text(json.dumps(paths))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def standin_state(request: pytest.FixtureRequest, sshd: Sshd, tmp_path: Path) -> Iterator[StandinState]:
    state = tmp_path / "standin-state"
    state.mkdir()
    if "pve" in request.fixturenames:
        # `pct` answers from the test's Proxmox (issue 14): only containers that exist, exec and
        # push only into running ones. Every node is 127.0.0.1 here, so it cannot tell the nodes
        # apart; the tabled_* fixtures give each node its own address for that.
        fake = request.getfixturevalue("pve")
        fake.node_table = state / "nodes.json"
        fake.node_root = state / "root"  # the conf files in /etc/pve/nodes/<node>/lxc, as pmxcfs shows them
        fake.write_node_table()
    # Re-point the link atomically: a new link, renamed over the old one.
    fresh = sshd.workdir / f"state.{os.getpid()}.new"
    with contextlib.suppress(FileNotFoundError):
        fresh.unlink()
    fresh.symlink_to(state)
    os.replace(fresh, sshd.state_link)
    yield StandinState(state)
    idle = sshd.workdir / "state-idle"
    fresh.symlink_to(idle)
    os.replace(fresh, sshd.state_link)
    # Container dirs hold only ordinary files (the mounts live in each call's private namespace);
    # removing them keeps pytest's kept tmp dirs small. Never walk into a mount, though.
    roots = list((state / "ct").glob("[0-9]*"))
    if not any(os.path.ismount(root / sub) for root in roots for sub in ("usr", ".standins", ".standin-state")):
        shutil.rmtree(state / "ct", ignore_errors=True)


@pytest.fixture
def ssh_access(sshd: Sshd) -> SshAccess:
    return sshd.access()


@pytest.fixture
def node_shell(ssh_access: SshAccess, standin_state: StandinState) -> Iterator[NodeShell]:
    with NodeShell(ssh_access) as shell:
        yield shell


@pytest.fixture
def tabled_ssh_access(pve: Any, sshd: Sshd, standin_state: StandinState) -> SshAccess:
    for node in NODE_ADDRESSES:
        if node not in pve.nodes:
            pve.add_node(node)
    pve.node_table = standin_state.path / "nodes.json"
    pve.node_root = standin_state.path / "root"
    pve.node_addresses = {address: node for node, address in NODE_ADDRESSES.items()}
    pve.write_node_table()
    return SshAccess(
        user=sshd.user,
        port=sshd.port,
        key_file=str(sshd.client_key),
        known_hosts=str(sshd.known_hosts),
        addresses=dict(NODE_ADDRESSES),
        connect_timeout=10,
    )


@pytest.fixture
def tabled_node_shell(tabled_ssh_access: SshAccess) -> Iterator[NodeShell]:
    with NodeShell(tabled_ssh_access) as shell:
        yield shell
