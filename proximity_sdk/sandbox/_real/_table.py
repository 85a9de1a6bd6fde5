"""The node table: each node's containers as the sandbox's Proxmox knows them, for the ``pct`` stand-in.

``pct`` on a real node answers from that node's own containers: an exec into a stopped container,
an absent one or one that lives on another node fails (pve-container's ``src/PVE/CLI/pct.pm``).
The stand-in runs in another process (under the sshd), so the sandbox's Proxmox writes its state
to a JSON file at every API request, whenever a task ends, a config changes or a container
appears or goes, and the stand-in reads it:

    {"real": false, "addresses": {"127.0.0.1": "pve1", "127.0.0.2": "pve2"},
     "nodes": {"pve1": {"100": {"status": "running", "lxc": "px-1a2b3c4d-100",
                                "config": {"hostname": "web", ...}}}, "pve2": {}}}

``addresses`` maps the address a node's shell answers on to the node (the stand-in reads the
server address of its SSH connection from ``SSH_CONNECTION``). Without a table (``node_table``
None) the stand-in keeps its old behaviour: every container it is asked about exists and runs.

With ``node_root`` set, each container's config is also a file,
``<node_root>/<node>/etc/pve/nodes/<node>/lxc/<vmid>.conf`` (each node's files under
``<node_root>/<node>``), written as pve-container's ``write_pct_config`` writes it (``key: value``
lines, then ``lxc.environment.runtime`` and the raw ``lxc.*`` entries, then ``[pve:pending]`` and
the snapshots), under PVE's config lock (``flock`` on
``<node_root>/<node>/run/lock/lxc/pve-config-<vmid>.lock``). A file someone else changed since (the
node shell adding ``lxc.console.logfile``: ``proximity_sdk/proxmox/console_log.py``) gives its raw
``lxc.*`` entries back to the container's config, as ``parse_pct_config`` reads them:
``GET .../config`` shows them under ``lxc`` as ``[[key, value], ...]``, a clone copies them, a
start opens (creates) the console log file as LXC does, and fails when its directory is missing,
real mode carries ``lxc.console.logfile`` into the LXC config. The node shell reaches the files
through ``PROXIMITY_NODE_ROOT`` (+ ``/<node>``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fakepve.model import TaskError

__all__ = ["NodeTableMixin", "raw_lxc_entries"]

# a raw key line as parse_pct_config reads it (pve-container src/PVE/LXC/Config.pm)
_RAW_LINE = re.compile(r"^(lxc\.[a-z0-9_\-.]+)(:|\s*=)\s*(.*?)\s*$")
# keys write_pct_config does not write as "key: value" (handled apart, or not config at all)
_NOT_WRITTEN = frozenset({"digest", "description", "pending", "snapshots", "snapname", "env", "lxc"})


def raw_lxc_entries(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The raw ``lxc.*`` entries of a container config (``config["lxc"]``, as PVE's API shows them)."""
    return [(str(k), str(v)) for k, v in config.get("lxc") or ()]


def _conf_text(config: dict[str, Any]) -> str:
    """One section of a pct config file, as write_pct_config's generate_raw_config writes it."""
    lines = [f"#{line}" for line in str(config.get("description") or "").split("\n") if line]
    lines += [f"{k}: {v}" for k, v in sorted(config.items()) if k not in _NOT_WRITTEN and v is not None]
    lines += [f"lxc.environment.runtime: {e}" for e in re.split(r"\0+", str(config.get("env") or "")) if e]
    lines += [f"{k}: {v}" for k, v in raw_lxc_entries(config) if k != "lxc.environment.runtime"]
    return "".join(f"{line}\n" for line in lines)


def _raw_entries(text: str) -> list[list[str]]:
    """The raw lxc.* entries of a config file's main section (parse_pct_config)."""
    found = []
    for line in text.splitlines():
        if line.startswith("["):
            break  # [pve:pending] and the snapshots come after the current config
        match = _RAW_LINE.match(line)
        if match and match[1] != "lxc.environment.runtime":
            found.append([match[1], match[3]])
    return found


class NodeTableMixin:
    """Mixed into the sandbox's Proxmox before FakePve: writes ``node_table`` when set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: where the table is written (None: nowhere, the stand-in treats every container as running)
        self.node_table: Path | None = None
        #: the address each node's shell answers on (address -> node)
        self.node_addresses: dict[str, str] = {}
        self._table_written: tuple[Path, str] | None = None  # what was last written where
        #: the nodes' files, each node's "/" in ``<node_root>/<node>`` (the node shell's
        #: ``PROXIMITY_NODE_ROOT``): the config files live there
        self.node_root: Path | None = None
        self._confs_written: dict[Path, str] = {}  # each config file as it was last written here

    def lxc_name(self, vmid: int) -> str | None:
        """The real LXC container behind ``vmid`` (None: not real mode)."""
        return None

    def conf_file(self, node: str, vmid: int) -> Path | None:
        """Where the node keeps container ``vmid``'s config (None: no ``node_root``)."""
        if self.node_root is None:
            return None
        return self.node_root / node / "etc" / "pve" / "nodes" / node / "lxc" / f"{vmid}.conf"

    def sync_conf_files(self) -> None:
        """Each container's config file: raw entries an edit added are taken in, then the file is
        written from the config; files of containers gone (or moved) are removed."""
        if self.node_root is None:
            return
        present: set[Path] = set()
        for ct in self.cts:  # type: ignore[attr-defined]
            path = self.conf_file(ct.node, ct.vmid)
            assert path is not None
            present.add(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._conf_file_lock(ct.node, ct.vmid):
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    text = None
                if text is not None and text != self._confs_written.get(path):
                    raw = _raw_entries(text)  # edited on the node: its raw entries are the config's now
                    if raw:
                        ct.config["lxc"] = raw
                    else:
                        ct.config.pop("lxc", None)
                wanted = self._conf_file_text(ct)
                if wanted != text:
                    partial = path.with_name(f"{path.name}.tmp.{os.getpid()}")
                    partial.write_text(wanted)
                    os.replace(partial, path)
                self._confs_written[path] = wanted
        for path in [p for p in self._confs_written if p not in present]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            del self._confs_written[path]

    def _conf_file_text(self, ct: Any) -> str:
        text = _conf_text(ct.config)
        pending = {k: v for k, v in ct.pending.items() if v is not None}
        deletes = sorted(k for k, v in ct.pending.items() if v is None)
        if pending or deletes:
            text += "\n[pve:pending]\n" + _conf_text(pending) + (f"delete: {','.join(deletes)}\n" if deletes else "")
        for name in sorted(ct.snapshots):
            text += f"\n[{name}]\n" + _conf_text(dict(ct.snapshots[name]))
        return text

    @contextlib.contextmanager
    def _conf_file_lock(self, node: str, vmid: int) -> Any:
        """PVE's lock of a container config (lock_config: flock on /run/lock/lxc/pve-config-<vmid>.lock)."""
        assert self.node_root is not None
        directory = self.node_root / node / "run" / "lock" / "lxc"
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / f"pve-config-{vmid}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_node_table(self) -> None:
        self.sync_conf_files()
        if self.node_table is None:
            return
        nodes: dict[str, dict[str, Any]] = {name: {} for name in self.nodes}  # type: ignore[attr-defined]
        for ct in self.cts:  # type: ignore[attr-defined]
            nodes.setdefault(ct.node, {})[str(ct.vmid)] = {
                "status": ct.status,
                "lxc": self.lxc_name(ct.vmid),
                "lock": ct.lock or "",
                "config": {k: str(v) for k, v in ct.config.items()},
            }
        table = {"real": self.lxc_name(0) is not None, "addresses": self.node_addresses, "nodes": nodes}
        text = json.dumps(table)
        if self._table_written == (self.node_table, text):
            return  # most requests change nothing: no file written and renamed for them
        partial = self.node_table.with_name(self.node_table.name + f".{os.getpid()}.tmp")
        partial.write_text(text)
        os.replace(partial, self.node_table)
        self._table_written = (self.node_table, text)

    def _open_console_log(self, ct: Any) -> None:
        """What LXC does with the console log file at every start: open it O_CREAT | O_APPEND
        (lxc/src/lxc/terminal.c lxc_terminal_create_log_file); a start that cannot open it fails."""
        self.sync_conf_files()
        path = next((v for k, v in raw_lxc_entries(ct.config) if k == "lxc.console.logfile"), None)
        if path and self.node_root is not None:
            log = self.node_root / ct.node / path.lstrip("/")
            if not log.parent.is_dir():
                raise TaskError(
                    f"startup for container '{ct.vmid}' failed (lxc-start: Failed to open terminal log file \"{path}\")"
                )
            with open(log, "a"):
                pass

    async def _start_steps(self, ct: Any, user: str, skiplock: bool = False) -> None:
        self._open_console_log(ct)
        await super()._start_steps(ct, user, skiplock)  # type: ignore[misc]

    async def task(
        self,
        node: str,
        ttype: str,
        tid: Any,
        user: str,
        body: Callable[[], Awaitable[Any]],
        vm: Any = None,
        lock: bool = True,
        log: Any = (),
    ) -> str:
        async def recorded() -> Any:
            try:
                result = await body()
                if ttype == "vzmigrate" and vm is not None and vm.status == "running":
                    try:  # a restart migration starts the container on the target (vm_start there)
                        self._open_console_log(vm)
                    except TaskError:
                        vm.status = "stopped"
                        raise
                return result
            finally:
                self.write_node_table()

        upid: str = await super().task(node, ttype, tid, user, recorded, vm=vm, lock=lock, log=log)  # type: ignore[misc]
        self.write_node_table()  # the container a create or clone added exists (locked) from now on
        return upid

    def _record(self, request: Any, body: bytes) -> None:
        # every API request refreshes the table: a test that set a container's state directly
        # (``pve.ct(150).status = "running"``) is seen by the next `pct` after its next request
        super()._record(request, body)  # type: ignore[misc]
        self.write_node_table()

    async def _update_config(self, ct: Any, user: str, values: Any, deletes: Any, reverts: Any) -> None:
        try:
            await super()._update_config(ct, user, values, deletes, reverts)  # type: ignore[misc]
        finally:
            self.write_node_table()

    def add_ct(self, *args: Any, **kwargs: Any) -> Any:
        ct = super().add_ct(*args, **kwargs)  # type: ignore[misc]
        self.write_node_table()
        return ct

    def _drop(self, ct: Any) -> None:
        super()._drop(ct)  # type: ignore[misc]
        self.write_node_table()
