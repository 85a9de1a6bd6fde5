"""Real mode of the sandbox's Proxmox: every container operation acts on a real LXC container.

:class:`RealLxcMixin` goes before :class:`~proximity_sdk.sandbox._pve.SandboxPve`'s bases; fakepve
still checks every request, takes the locks and keeps the config, and the mixin does the real
work at the same points of each task as PVE does:

- create: the template (or, for a restore, the vzdump archive) really is a file in the storage
  and is unpacked into ``/var/lib/lxc/<name>/rootfs``; hostname, MAC, memory and cores go into
  the LXC config; a failure removes the half-made container and fails the task;
- start (and create with ``start``, reboot, migrate): ``lxc-start`` and a wait for RUNNING;
  shutdown: a clean ``lxc-stop`` within the timeout (``forceStop`` kills after it, else the task
  fails with PVE's "container did not stop"); stop: ``lxc-stop -k``; destroy: ``lxc-destroy``;
- status: a container PVE thinks runs but whose init has ended (a poweroff inside) reads stopped;
- interfaces: the address ``eth0`` really leased from lxc-net's dnsmasq on ``lxcbr0``; nothing for a
  container whose init has ended (PVE's ``get_interfaces`` finds no PID);
- config: ``memory`` and ``cores`` become cgroup v1 limits at once on a running container and in
  the LXC config (what cannot be applied is kept in ``real_notes``); a resize only records the
  new size (a directory root filesystem has no size to grow);
- vzdump: a real tar of the root filesystem plus ``./etc/vzdump/pct.conf``, compressed as asked
  (``.tar.zst``/``.tar.gz``/``.tar``); ``mode=stop`` shuts a running container down for it and
  starts it again, as PVE does; restore unpacks it (new VMID, or in place with ``force``);
- snapshot: a copy of the root filesystem (the running container frozen meanwhile), deleted with
  the snapshot; rollback: the copy back in place of the root filesystem (stopped first, ``start``
  honoured); clone: a copy of the stopped source's root filesystem or of the snapshot named;
- migrate (restart mode): stop, move to the other node name, start again (one machine: the files
  stay where they are);
- OCI (asked only of a node given 9.1 in ``node_versions``): ``oci-registry-pull`` runs skopeo into
  the storage's template cache (``insecure_registries``: plain HTTP allowed, the model of the
  node's ``registries.conf``); a create from the archive unpacks it with umoci, the entrypoint is
  the LXC init (split into words as LXC 6 splits ``lxc.init.cmd``) with the image's env, and a
  ``host-managed`` interface gets its lease from the host at start (``_real/_oci.py``, ``_lxc.host_dhcp``).

LXC names are ``px-<8 hex>-<vmid>``, unique per sandbox (tests run on two workers at once);
``destroy_real_containers()`` removes every container of this sandbox, and ``sweep`` those of a
prefix. Tasks need ``time_scale`` > 0: a real create and start take seconds, and a task run inside
the HTTP request would hold it that long.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from fakepve.lxc import parse_mount, split_props
from fakepve.model import PveError, TaskError

from proximity_sdk.sandbox._oci import OciImageConfig, pve_kills
from proximity_sdk.sandbox._pve import SandboxPve
from proximity_sdk.sandbox._real import _lxc, _oci
from proximity_sdk.sandbox._real._table import raw_lxc_entries
from proximity_sdk.sandbox._real._templates import Template, cached_templates

__all__ = ["PREFIX", "RealLxcMixin", "RealSandboxPve", "sweep"]

PREFIX = "px-"


def sweep(prefix: str) -> list[str]:
    """Destroy every LXC container whose name starts with ``prefix`` (a sandbox's own, after a crash)."""
    gone = []
    for name in _lxc.list_names(prefix):
        _lxc.destroy(name)
        gone.append(name)
    return gone


class RealLxcMixin:
    """Real LXC containers behind the sandbox's Proxmox (module docstring)."""

    def __init__(self, *args: Any, templates: list[Template] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.real_prefix = f"{PREFIX}{secrets.token_hex(4)}"
        #: the templates the appliance index offers (the cached debootstrap builds)
        self.real_templates = list(templates) if templates is not None else cached_templates()
        self.appliances = [t.appliance() for t in self.real_templates]
        #: vmid -> what real mode could not apply (memory/cores limits, a resize)
        self.real_notes: dict[int, list[str]] = defaultdict(list)
        #: seconds to wait for a started container's DHCP lease before /interfaces reports none
        self.lease_wait = 0.0
        self._storage_root = Path(tempfile.mkdtemp(prefix=f"proximity-{self.real_prefix}-"))
        self._creating: dict[int, dict[str, Any]] = {}
        self._vzdump_modes: dict[int, str] = {}
        self._rollbacks: dict[int, tuple[str, bool]] = {}
        self._clone_from: dict[int, str] = {}  # new vmid -> the snapshot its clone copies
        #: registries (``host[:port]``) this node's /etc/containers/registries.conf marks insecure
        #: (plain HTTP): an OCI pull from one skips TLS, as skopeo does with ``insecure = true``
        self.insecure_registries: set[str] = set()
        self._oci_configs: dict[str, dict[str, Any]] = {}  # template volid -> its image config
        self._halt_signals: dict[int, str] = {}  # vmid -> lxc.signal.halt of an OCI-made container

    # ------------------------------------------------------------- names

    def lxc_name(self, vmid: int) -> str | None:
        return f"{self.real_prefix}-{vmid}"

    def _name(self, vmid: int) -> str:
        return f"{self.real_prefix}-{vmid}"

    def destroy_real_containers(self) -> list[str]:
        """Remove every real container this sandbox made (teardown), and its storage files."""
        gone = sweep(self.real_prefix + "-")
        shutil.rmtree(self._storage_root, ignore_errors=True)
        return gone

    @staticmethod
    async def _do(function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking LXC call off the event loop; its failure fails the task."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except _lxc.LxcError as exc:
            raise TaskError(str(exc)) from exc

    # ------------------------------------------------------------ storage

    def template_dir(self, storage: str) -> Path:
        """The real ``template/cache`` directory of a storage (as PVE's dir storage lays it out)."""
        path = self._storage_root / storage / "template" / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def volume_file(self, volid: str) -> Path:
        """The file behind a ``vztmpl`` or ``backup`` volume."""
        storage, _, volname = volid.partition(":")
        kind, _, name = volname.partition("/")
        if kind == "vztmpl":
            return self.template_dir(storage) / name
        if kind == "backup":
            return self.archive_path(volid)  # type: ignore[attr-defined,no-any-return]
        raise TaskError(f"unable to use volume {volid} as a container source")

    def add_template(self, storage: str = "local", template: Template | None = None) -> str:
        """Put a cached template into a storage now (what an aplinfo download does); its volid."""
        chosen = template or self.real_templates[0]
        target = self.template_dir(storage) / chosen.name
        if not target.exists():
            _link_or_copy(chosen.path, target)
        self.store_file(storage, chosen.name, target.stat().st_size, content="vztmpl")  # type: ignore[attr-defined]
        return f"{storage}:vztmpl/{chosen.name}"

    async def _aplinfo_download(self, v: dict[str, Any], user: str) -> str:
        template, storage = v["template"], v["storage"]
        chosen = next((t for t in self.real_templates if t.name == template), None)
        if chosen is None:
            offered = ", ".join(t.name for t in self.real_templates) or "none (build one: scripts/real-node)"
            raise PveError(
                400,
                "Parameter verification failed.",
                {"template": f"no such template (this node's index has: {offered})"},
            )
        store = self.storages.get(storage)  # type: ignore[attr-defined]
        if store is None:
            raise PveError(500, f"storage '{storage}' does not exist")
        if "vztmpl" not in str(store.get("content", "")).split(","):
            raise PveError(500, f"storage '{storage}' does not support templates")

        async def body() -> str:
            await self._do(self.add_template, storage, chosen)
            return f"download of '{template}' to '{storage}:vztmpl/{template}' finished"

        upid: str = await self.task(v["node"], "download", template, user, body)
        return upid

    # --------------------------------------------------------------- OCI

    async def _oci_fetch(self, reference: str, storage: str, name: str, image: OciImageConfig) -> OciImageConfig:
        # the real pull (pve-storage oci_registry_pull): skopeo into the storage's template cache
        target = self.template_dir(storage) / name
        insecure = _oci.registry_of(reference) in self.insecure_registries
        try:
            await asyncio.to_thread(_oci.pull, reference, target, insecure=insecure)
            raw = await asyncio.to_thread(_oci.image_config, target)
        except _oci.OciError as exc:
            target.unlink(missing_ok=True)
            raise TaskError(str(exc)) from exc
        self.store_file(storage, name, target.stat().st_size, content="vztmpl")  # type: ignore[attr-defined]
        self._oci_configs[f"{storage}:vztmpl/{name}"] = raw
        return OciImageConfig(
            env=tuple(raw.get("Env") or ()),
            entrypoint=tuple(raw.get("Entrypoint") or ()),
            cmd=tuple(raw.get("Cmd") or ()),
        )

    # ------------------------------------------------------------ create

    async def _lxc_create(self, user: str, v: dict[str, Any]) -> Any:
        vmid = int(v["vmid"])
        request = dict(v)
        self._creating[vmid] = {
            "ostemplate": str(v["ostemplate"]),
            "start": bool(v.get("start")),
            "restore": bool(v.get("restore")),
        }
        request.pop("start", None)  # started here once the real container exists
        try:
            return await super()._lxc_create(user, request)  # type: ignore[misc]
        except BaseException:
            self._creating.pop(vmid, None)
            raise

    def _real_config(self, ct: Any) -> _lxc.RealConfig:
        hwaddr = None
        for key in sorted(k for k in ct.config if re.fullmatch(r"net\d+", k)):
            props = split_props(ct.config[key])[1]
            if props.get("name", "eth0") == "eth0":
                hwaddr = props.get("hwaddr")
        memory = ct.config.get("memory")
        cores = ct.config.get("cores")
        env = str(ct.config.get("env") or "")
        return _lxc.RealConfig(
            hostname=str(ct.config.get("hostname") or f"CT{ct.vmid}"),
            hwaddr=hwaddr,
            memory_mb=int(memory) if memory else None,
            cores=int(cores) if cores else None,
            entrypoint=ct.config.get("entrypoint") or None,
            env=tuple(e for e in re.split(r"\0+", env) if e),
            halt_signal=self._halt_signals.get(ct.vmid),
            console_logfile=self._console_logfile(ct),
        )

    def _console_logfile(self, ct: Any) -> str | None:
        """The container's raw ``lxc.console.logfile`` as a path on this machine: the node's paths
        live under ``node_root/<node>`` (the node shell's ``PROXIMITY_NODE_ROOT``)."""
        self.sync_conf_files()  # type: ignore[attr-defined]  # an edit the node shell made is taken in first
        path = next((v for k, v in raw_lxc_entries(ct.config) if k == "lxc.console.logfile"), None)
        root: Path | None = self.node_root  # type: ignore[attr-defined]
        if not path or root is None:
            return path or None
        return str(root / ct.node / path.lstrip("/"))

    @staticmethod
    def _host_managed_dhcp(ct: Any) -> list[str]:
        """The interfaces the host takes a DHCP lease for (``host-managed=1`` with ``ip=dhcp``)."""
        names = []
        for key in sorted(k for k in ct.config if re.fullmatch(r"net\d+", k)):
            props = split_props(ct.config[key])[1]
            if str(props.get("host-managed")) == "1" and props.get("ip") == "dhcp" and props.get("link_down") != "1":
                names.append(str(props.get("name", "eth0")))
        return names

    async def _real_create(self, ct: Any, user: str) -> None:
        plan = self._creating.pop(ct.vmid, None)
        if plan is None:
            return
        name = self._name(ct.vmid)
        verb = "restore" if plan["restore"] else "create"
        try:
            await self._do(_lxc.destroy, name)  # an overwrite (restore with force): the old one goes first
            source = self.volume_file(plan["ostemplate"])
            # pve-container: an OCI archive is unpacked as an image (never on restore), else as a tar
            if not plan["restore"] and await asyncio.to_thread(_oci.is_oci_archive, source):
                raw = self._oci_configs.get(plan["ostemplate"])
                if raw is None:
                    raw = await asyncio.to_thread(_oci.image_config, source)
                self._halt_signals[ct.vmid] = str(raw.get("StopSignal") or "SIGTERM")
                await self._do(_lxc.create_from_oci, name, source, self._real_config(ct))
            else:
                await self._do(_lxc.create_from_archive, name, source, self._real_config(ct))
        except (TaskError, _oci.OciError) as exc:
            self._drop(ct)  # type: ignore[attr-defined]
            raise TaskError(f"unable to {verb} CT {ct.vmid} - {exc}") from exc
        if plan["start"]:
            await self._start_steps(ct, user)

    # ------------------------------------------------------------ tasks

    async def task(
        self, node: str, ttype: str, tid: Any, user: str, body: Any, vm: Any = None, lock: bool = True, log: Any = ()
    ) -> str:
        async def real() -> Any:
            if ttype in ("vzsnapshot", "vzdelsnapshot") and vm is not None:
                return await self._real_snapshots(vm, body)
            if ttype == "vzrollback" and vm is not None:
                return await self._real_rollback(vm, user, body)
            if ttype == "vzstop" and vm is not None:
                name = self._name(vm.vmid)
                note = await body()
                if vm.status == "stopped":
                    await self._do(_lxc.stop, name, kill=True)
                return note
            if ttype == "vzmigrate" and vm is not None:
                note = await body()  # the powerdown stopped the real container; PVE starts it on the target
                if vm.status == "running" and await self._do(_lxc.state, self._name(vm.vmid)) != "running":
                    await self._real_start(vm)
                return note
            try:
                note = await body()
            except BaseException:
                if ttype in ("vzcreate", "vzrestore"):
                    self._creating.pop(int(tid), None)
                raise
            if ttype in ("vzcreate", "vzrestore"):
                created = self.ct(int(tid))  # type: ignore[attr-defined]
                if created is not None and int(tid) in self._creating:
                    await self._real_create(created, user)
            elif ttype == "vzdestroy":
                await self._do(_lxc.destroy, self._name(int(tid)))
                self._halt_signals.pop(int(tid), None)
            elif ttype == "vzclone" and vm is not None:
                # PVE keeps an image's StopSignal as a raw `lxc.signal.halt` key, which clone_vm copies
                signal = self._halt_signals.get(int(tid))
                if signal is not None:
                    self._halt_signals[vm.vmid] = signal
                try:
                    await self._do(
                        _lxc.copy_rootfs,
                        self._name(int(tid)),
                        self._name(vm.vmid),
                        self._real_config(vm),
                        snapname=self._clone_from.pop(vm.vmid, None),
                    )
                except TaskError:
                    self._halt_signals.pop(vm.vmid, None)
                    self._drop(vm)  # type: ignore[attr-defined]
                    raise
            elif ttype == "resize" and vm is not None:
                self.real_notes[vm.vmid].append("resize recorded only: a directory root filesystem has no size")
            return note

        upid: str = await super().task(node, ttype, tid, user, real, vm=vm, lock=lock, log=log)  # type: ignore[misc]
        return upid

    # ---------------------------------------------------------- snapshots

    async def _real_snapshots(self, ct: Any, body: Any) -> Any:
        """A snapshot task: the config part is fakepve's; the files are copied (or removed) here."""
        before = set(ct.snapshots)
        note = await body()
        name = self._name(ct.vmid)
        for snapname in sorted(set(ct.snapshots) - before):
            try:
                await self._do(_lxc.snapshot, name, snapname)
            except TaskError:
                ct.snapshots.pop(snapname, None)
                raise
        for snapname in sorted(before - set(ct.snapshots)):
            await self._do(_lxc.delete_snapshot, name, snapname)
        return note

    async def _lxc_rollback(self, user: str, v: dict[str, Any]) -> Any:
        self._rollbacks[int(v["vmid"])] = (str(v["snapname"]), bool(v.get("start")))
        request = {k: x for k, x in v.items() if k != "start"}  # started here once the files are back
        return await super()._lxc_rollback(user, request)  # type: ignore[misc]

    async def _real_rollback(self, ct: Any, user: str, body: Any) -> Any:
        snapname, start = self._rollbacks.pop(ct.vmid, ("", False))
        name = self._name(ct.vmid)
        if snapname in ct.snapshots:  # PVE's rollback stops a running container first
            await self._do(_lxc.stop, name, kill=True)
        note = await body()
        await self._do(_lxc.rollback, name, snapname)
        await self._do(_lxc.write_config, name, self._real_config(ct))
        if start:
            await self._start_steps(ct, user)
        return note

    async def _lxc_clone(self, user: str, v: dict[str, Any]) -> Any:
        if v.get("snapname"):
            self._clone_from[int(v["newid"])] = str(v["snapname"])
        try:
            return await super()._lxc_clone(user, v)  # type: ignore[misc]
        except BaseException:
            self._clone_from.pop(int(v["newid"]), None)
            raise

    async def _real_start(self, ct: Any) -> None:
        name = self._name(ct.vmid)
        config = self._real_config(ct)
        await self._do(_lxc.write_config, name, config)
        await self._do(_lxc.start, name, may_exit=bool(config.entrypoint))
        for interface in self._host_managed_dhcp(ct):
            if await asyncio.to_thread(_lxc.state, name) != "running":
                break  # the entrypoint already exited: nothing to lease for
            # PVE: a failed lease is a warning of the start task, not a failure (log_warn)
            try:
                await asyncio.to_thread(_lxc.host_dhcp, name, interface, config.hostname)
            except _lxc.LxcError as exc:
                self.real_notes[ct.vmid].append(f"DHCP failed - {exc}")
        if self.lease_wait:
            await asyncio.to_thread(_lxc.wait_address, name, self.lease_wait)

    async def _start_steps(self, ct: Any, user: str, skiplock: bool = False) -> None:
        await super()._start_steps(ct, user, skiplock)  # type: ignore[misc]
        try:
            await self._real_start(ct)
        except TaskError:
            ct.status = "stopped"
            ct.pid = None
            raise

    async def _ct_powerdown(self, ct: Any, timeout: Any, force: bool) -> None:
        force = pve_kills(ct, force)  # a restart migration's shutdown does not kill (Migrate.pm prepare)
        name = self._name(ct.vmid)
        stopped = await self._do(_lxc.stop, name, kill=False, timeout=float(timeout))
        if not stopped:
            if not force:
                raise TaskError("container did not stop")
            await self._do(_lxc.stop, name, kill=True)
        await super()._ct_powerdown(ct, timeout, force)  # type: ignore[misc]

    # ------------------------------------------------------------ status

    def _status(self, ct: Any) -> Any:
        self._read_real_state(ct)
        return super()._status(ct)  # type: ignore[misc]

    def _read_real_state(self, ct: Any) -> None:
        """A running container whose init ended inside (an entrypoint that exited) is stopped."""
        if ct.status == "running" and ct.lock_holder is None and not ct.lock:
            name = self._name(ct.vmid)
            if _lxc.exists(name) and _lxc.state(name) != "running":
                ct.status = "stopped"
                ct.pid = None

    async def _lxc_interfaces(self, user: str, v: dict[str, Any]) -> Any:
        # PVE's get_interfaces (src/PVE/LXC.pm) asks lxc-info for the container's PID and answers
        # nothing (null) when there is none: a container whose entrypoint exited has no interfaces
        # to list, whatever the API's status last read. fakepve answers null for a stopped
        # container, so the real state is read first.
        ct = self._find_ct(v["node"], v["vmid"])  # type: ignore[attr-defined]
        await asyncio.to_thread(self._read_real_state, ct)
        data = await super()._lxc_interfaces(user, v)  # type: ignore[misc]
        if not data:
            return data
        real = await asyncio.to_thread(_lxc.address, self._name(int(v["vmid"])))
        for item in data:
            if item.get("name") != "eth0":
                continue
            item["ip-addresses"] = [a for a in item.get("ip-addresses", []) if a.get("ip-address-type") != "inet"]
            item.pop("inet", None)
            if real:
                item["inet"] = f"{real}/24"
                item["ip-addresses"].insert(0, {"ip-address-type": "inet", "ip-address": real, "prefix": "24"})
        return data

    # ------------------------------------------------------------ config

    async def _update_config(self, ct: Any, user: str, values: Any, deletes: Any, reverts: Any) -> None:
        await super()._update_config(ct, user, values, deletes, reverts)  # type: ignore[misc]
        if {"memory", "cores", "hostname"} & (set(values) | set(deletes)) and _lxc.exists(self._name(ct.vmid)):
            skipped = await self._do(_lxc.set_limits, self._name(ct.vmid), self._real_config(ct))
            self.real_notes[ct.vmid].extend(skipped)

    # ------------------------------------------------------------ vzdump

    async def _vzdump_one(
        self, ct: Any, storage: str, extension: str, mode: str, lines: list[str], failure: str | None
    ) -> str:
        self._vzdump_modes[ct.vmid] = mode
        try:
            note: str = await super()._vzdump_one(ct, storage, extension, mode, lines, failure)  # type: ignore[misc]
        finally:
            self._vzdump_modes.pop(ct.vmid, None)
        return note

    async def _write_archive(self, ct: Any, path: Path, config: dict[str, Any]) -> None:
        text = "".join(f"{k}: {val}\n" for k, val in sorted(config.items()))
        name = self._name(ct.vmid)
        # PVE's stop mode: a clean shutdown, the archive of the quiet filesystem, a start again
        restart = self._vzdump_modes.get(ct.vmid) == "stop" and await self._do(_lxc.state, name) == "running"
        if restart and not await self._do(_lxc.stop, name, kill=False, timeout=60.0):
            await self._do(_lxc.stop, name, kill=True)
        try:
            await self._do(_lxc.archive, name, path, text)
        finally:
            if restart:
                await self._do(_lxc.start, name)

    def _archive_config(self, path: Path) -> dict[str, str]:
        if not path.exists():
            raise FileNotFoundError(str(path))
        argv = ["tar", "-xO", *_lxc_compression(path), "-f", str(path), "./etc/vzdump/pct.conf"]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            import tarfile

            raise tarfile.TarError(result.stderr.strip() or f"tar exit code {result.returncode}")
        config = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                config[key] = value
        return config

    def rootfs_size(self, vmid: int) -> str | None:
        """The size recorded for the rootfs (what a resize changes), e.g. ``8G``."""
        ct = self.ct(vmid)  # type: ignore[attr-defined]
        if ct is None or "rootfs" not in ct.config:
            return None
        size: str | None = parse_mount(ct.config["rootfs"]).get("size")
        return size


def _lxc_compression(path: Path) -> list[str]:
    try:
        return _lxc._compression(path)
    except _lxc.LxcError:
        return []


def _link_or_copy(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        partial.hardlink_to(source)
    except OSError:
        shutil.copyfile(source, partial)
    partial.replace(target)


class RealSandboxPve(RealLxcMixin, SandboxPve):
    """The sandbox's Proxmox in real mode (``Sandbox.start(real=True)``)."""
