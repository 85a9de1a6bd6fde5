"""vzdump and restore that behave like PVE's, with real archive files on disk (the sandbox and the tests).

Stock fakepve answers ``POST /nodes/{node}/vzdump`` with a task that stores nothing, and restores
a container from any ``ostemplate`` without looking at it. :class:`VzdumpMixin` (a base of
``SandboxPve``) adds:

- ``vzdump`` of one container: a ``vzdump`` task holding the node's global vzdump lock (a second
  vzdump on the node waits, logging ``trying to get global lock - waiting...``, for up to
  ``lockwait`` minutes, as PVE's does), the container's ``backup`` lock while it runs
  (``vzdump_secs`` PVE seconds), then a real tar file
  ``<dump dir>/vzdump-lxc-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<tar|tar.zst|tar.gz|tar.lzo>`` holding
  ``./etc/vzdump/pct.conf`` (the container's config) and some payload. The volume
  ``<storage>:backup/<file>`` appears in the storage content with its size and ``vmid``;
  ``on_archive(volid, path)`` is called (tests point the ``pvesm path`` stand-in at the file).
- The backup content of a storage **is** its dump directory: a file removed from it (or pushed
  into it over SSH) disappears from (or appears in) ``GET .../content``; deleting the volume
  through the API removes the file.
- Restore (``POST /nodes/{node}/lxc`` with ``restore=1``) reads the archive: a missing file or
  one that is not a tar archive fails the ``vzrestore`` task (and, over an existing container with
  ``force=1``, destroys it first, as PVE's overwrite path does); a good one brings the archived
  config back as ``PVE::LXC::Create::sanitize_and_merge_config`` does: every option the request
  did not give, except ``digest``, ``rootfs``, ``mpN``, ``unusedN``, ``snapshots``, ``parent``,
  ``template`` and (for anyone but root@pam) raw ``lxc`` keys; ``unprivileged`` from the archive
  unless given; a new MAC on every ``netN`` with ``unique=1``. With no ``rootfs`` in the request
  the root disk and every ``mpN`` are made again on ``storage`` (default ``local``) with their
  archived sizes; a disk without a size fails as PVE's "unable to detect disk size".
- Container files: with ``container_files`` set (vmid -> a directory, e.g. a stand-in
  container's), the archive also holds that directory under ``./rootfs`` and a restore puts it
  back in place of the target container's directory, as PVE restores the root filesystem.
- Faults: ``fail_next_vzdump(message)``; ``vzdump_parallel[node]`` is the most vzdumps that ever
  ran at once on a node.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fakepve.lxc import split_props
from fakepve.model import PveError, TaskError

__all__ = ["ARCHIVE_EXTENSIONS", "VzdumpMixin", "read_archive_config"]

# vzdump's --compress value -> the archive's extension
ARCHIVE_EXTENSIONS = {"0": ".tar", "1": ".tar.lzo", "lzo": ".tar.lzo", "gzip": ".tar.gz", "zstd": ".tar.zst"}
_ARCHIVE = re.compile(r"^vzdump-lxc-(\d+)-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar(\.zst|\.gz|\.lzo)?$")
_CONFIG_MEMBER = "./etc/vzdump/pct.conf"
# archived options a restore does not take back (sanitize_and_merge_config; mount points are made
# again from their sizes instead); "lock" is never archived by PVE (vzdump writes the config unlocked)
_NOT_RESTORED = re.compile(r"^(digest|rootfs|snapshots|parent|template|lock|mp\d+|unused\d+|lxc(\..*)?)$")
# of those restored, the ones passed to fakepve's create (it reads them); the rest are written after
_CREATE_KEYS = re.compile(
    r"^(hostname|memory|swap|cores|cpulimit|cpuunits|net\d+|features|tags|description|"
    r"nameserver|searchdomain|onboot|timezone|unprivileged|entrypoint|env|cmode|protection|"
    r"startup|console|tty)$"
)
PAYLOAD_BYTES = 64 * 1024


def read_archive_config(path: str | os.PathLike[str]) -> dict[str, str]:
    """The container config stored in a harness archive (raises ``tarfile.TarError`` if it is not one)."""
    with tarfile.open(path, "r:") as tar:
        member = tar.extractfile(_CONFIG_MEMBER)
        if member is None:
            raise tarfile.TarError(f"{_CONFIG_MEMBER} is missing")
        text = member.read().decode()
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            config[key] = value
    return config


class VzdumpMixin:
    """Mixed into HarnessPve before FakePve (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: PVE seconds a vzdump works once it holds the node's lock
        self.vzdump_secs = 0.0
        #: called with (volid, path) when an archive is written
        self.on_archive: Callable[[str, str], None] | None = None
        #: node -> the most vzdump tasks that held the global lock at once (must stay 1)
        self.vzdump_parallel: dict[str, int] = defaultdict(int)
        #: node -> how many vzdump tasks had to wait for the global lock
        self.vzdump_waited: dict[str, int] = defaultdict(int)
        #: vmid -> the volids it was restored from, in order
        self.restored_from: dict[int, list[str]] = defaultdict(list)
        #: vmid -> the directory holding the container's files (the stand-in containers), if any:
        #: a backup archives them under ./rootfs and a restore puts them back
        self.container_files: Callable[[int], Path] | None = None
        self._vzdump_failures: list[str] = []
        self._settling: set[asyncio.Future[None]] = set()
        self._vzdump_locks: dict[str, asyncio.Lock] = {}
        self._vzdump_holding: dict[str, int] = defaultdict(int)
        self._dump_root = Path(tempfile.mkdtemp(prefix="harness-pve-dump-"))
        weakref.finalize(self, shutil.rmtree, str(self._dump_root), True)

    # -------------------------------------------------------------- files

    def dump_dir(self, storage: str) -> Path:
        """The real directory holding the backup archives of ``storage``."""
        path = self._dump_root / storage
        path.mkdir(exist_ok=True)
        return path

    def archive_path(self, volid: str) -> Path:
        storage, _, volname = volid.partition(":")
        return self.dump_dir(storage) / volname.removeprefix("backup/")

    def fail_next_vzdump(self, message: str) -> None:
        """The next vzdump task fails with ``message`` (after taking the lock, as a real failure would)."""
        self._vzdump_failures.append(message)

    def _volumes(self, name: str) -> Any:
        self._sync_backups(name)
        return super()._volumes(name)  # type: ignore[misc]

    def _sync_backups(self, name: str) -> None:
        """Make the storage's backup volumes exactly the archive files in its dump directory."""
        store = self.storages.get(name)  # type: ignore[attr-defined]
        if store is None or "backup" not in str(store.get("content", "")).split(","):
            return
        volumes = store.setdefault("volumes", {})
        present = {}
        for entry in self.dump_dir(name).iterdir():
            found = _ARCHIVE.match(entry.name)
            if found and entry.is_file():
                present["backup/" + entry.name] = (int(found.group(1)), entry)
        for volname in [v for v, vol in volumes.items() if vol.get("content") == "backup" and v not in present]:
            del volumes[volname]
        for volname, (vmid, entry) in present.items():
            stat = entry.stat()
            old = volumes.get(volname, {})
            volumes[volname] = {
                **old,
                "content": "backup",
                "size": stat.st_size,
                "ctime": int(stat.st_mtime),
                "format": entry.name.split(".", 1)[1],
                "vmid": vmid,
            }

    async def _content_delete(self, v: dict[str, Any], user: str) -> Any:
        result = await super()._content_delete(v, user)  # type: ignore[misc]
        volid = v["volume"] if ":" in v["volume"] else f"{v['storage']}:{v['volume']}"
        if volid.partition(":")[2].startswith("backup/"):
            self.archive_path(volid).unlink(missing_ok=True)
        return result

    # ------------------------------------------------------------- vzdump

    def _routes_harness_vzdump(self) -> list[tuple[str, str, Callable[..., Awaitable[Any]]]]:
        return [("POST", "/nodes/{node}/vzdump", self._vzdump)]

    async def _vzdump(self, v: dict[str, Any], user: str) -> str:
        node = v["node"]
        ids = [i for i in re.split(r"[,;\s]+", str(v.get("vmid") or "")) if i]
        if v.get("all") or v.get("pool") or len(ids) != 1:
            raise PveError(501, "harness: vzdump of exactly one vmid is implemented")
        vmid = int(ids[0])
        ct = self._find_ct(node, vmid)  # type: ignore[attr-defined]
        storage = v.get("storage") or "local"
        store = self.storages.get(storage)  # type: ignore[attr-defined]
        if store is None:
            raise PveError(500, f"storage '{storage}' does not exist")
        if "backup" not in str(store.get("content", "")).split(","):
            raise PveError(500, f"can't use storage '{storage}' for backups - wrong content type")
        compress = str(v.get("compress", "0"))
        extension = ARCHIVE_EXTENSIONS[compress]
        mode = v.get("mode", "snapshot")
        lockwait = float(v.get("lockwait", 180)) * 60
        failure = self._vzdump_failures.pop(0) if self._vzdump_failures else None
        log = [
            f"INFO: starting new backup job: vzdump {vmid} --storage {storage} --mode {mode} "
            f"--compress {compress} --node {node}"
        ]

        async def body() -> str:
            lines = self._running_task_log("vzdump", vmid)
            lock = self._vzdump_locks.setdefault(node, asyncio.Lock())
            if lock.locked():
                self.vzdump_waited[node] += 1
                lines.append("INFO: trying to get global lock - waiting...")
                try:
                    wait = lockwait * self.time_scale if self.time_scale else None  # type: ignore[attr-defined]
                    await asyncio.wait_for(lock.acquire(), timeout=wait)
                except TimeoutError:
                    raise TaskError("can't acquire lock '/var/run/vzdump.lock' - got timeout") from None
                lines.append("INFO: got global lock")
            else:
                await lock.acquire()
            self._vzdump_holding[node] += 1
            self.vzdump_parallel[node] = max(self.vzdump_parallel[node], self._vzdump_holding[node])
            try:
                return await self._vzdump_one(ct, storage, extension, mode, lines, failure)
            finally:
                self._vzdump_holding[node] -= 1
                lock.release()

        upid: str = await self.task(node, "vzdump", vmid, user, body, vm=ct, lock=False, log=log)  # type: ignore[attr-defined]
        return upid

    def _running_task_log(self, ttype: str, vmid: int) -> list[str]:
        for record in reversed(self.tasklog):  # type: ignore[attr-defined]
            if record["type"] == ttype and record["id"] == str(vmid) and record["status"] == "running":
                return record["log"]  # type: ignore[no-any-return]
        return []

    async def _vzdump_one(
        self, ct: Any, storage: str, extension: str, mode: str, lines: list[str], failure: str | None
    ) -> str:
        vmid = ct.vmid
        # PVE::VZDump::exec_backup_task: a guest that is not running is always backed up in stop mode
        mode = mode if ct.status == "running" else "stop"
        lines += [
            f"INFO: Starting Backup of VM {vmid} (lxc)",
            f"INFO: status = {ct.status}",
            f"INFO: CT Name: {ct.config.get('hostname', f'CT{vmid}')}",
            "INFO: including mount point rootfs ('/') in backup",
            f"INFO: backup mode: {mode}",
        ]
        ct.lock = "backup"
        ct.config["lock"] = "backup"
        started = time.monotonic()
        try:
            await self.pause(self.vzdump_secs)  # type: ignore[attr-defined]
            if failure:
                raise TaskError(failure)
            directory = self.dump_dir(storage)
            stamp = time.time()
            while True:
                name = f"vzdump-lxc-{vmid}-{time.strftime('%Y_%m_%d-%H_%M_%S', time.localtime(stamp))}{extension}"
                path = directory / name
                if not path.exists():
                    break
                stamp += 1  # two backups of one guest within a second: the next second's name
            lines.append(f"INFO: creating vzdump archive '{path}'")
            config = {k: val for k, val in ct.config.items() if k != "lock"}
            await self._write_archive(ct, path, config)
        finally:
            ct.lock = None
            ct.config.pop("lock", None)
        volid = f"{storage}:backup/{name}"
        size = path.stat().st_size
        lines.append(f"INFO: archive file size: {size / 1024:.0f}KB")
        if self.on_archive is not None:
            self.on_archive(volid, str(path))
        return f"INFO: Finished Backup of VM {vmid} ({time.monotonic() - started:.0f}s)"

    async def _write_archive(self, ct: Any, path: Path, config: dict[str, Any]) -> None:
        """Write the archive file of ``ct`` (real mode writes the real root filesystem instead)."""
        files = self.container_files(ct.vmid) if self.container_files is not None else None
        path.write_bytes(_archive_bytes(config, files if files is not None and files.is_dir() else None))

    def _archive_config(self, path: Path) -> dict[str, str]:
        """The config stored in an archive (real mode reads compressed archives too)."""
        return read_archive_config(path)

    # ------------------------------------------------------------- restore

    async def _lxc_create(self, user: str, v: dict[str, Any]) -> Any:
        volid = str(v.get("ostemplate", ""))
        storage_id, _, volname = volid.partition(":")
        if not v.get("restore") or not volname.startswith("backup/") or storage_id not in self.storages:  # type: ignore[attr-defined]
            return await super()._lxc_create(user, v)  # type: ignore[misc]
        vmid = int(v["vmid"])
        path = self.archive_path(volid)
        try:
            archived = self._archive_config(path)
        except FileNotFoundError:
            return await self._failed_restore(user, v, f"archive '{path}' does not exist")
        except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
            return await self._failed_restore(
                user,
                v,
                f"command 'tar xpf - --zstd --totals --one-file-system -p --sparse --numeric-owner "
                f"--acls --xattrs -C /var/lib/lxc/{vmid}/rootfs' failed: exit code 2 ({exc})",
            )
        request = dict(v)
        kept: dict[str, str] = {}
        for key, value in archived.items():
            if _NOT_RESTORED.match(key) or key in request:
                continue
            if key.startswith("net") and key[3:].isdigit() and v.get("unique"):
                name, props = split_props(value)
                props.pop("hwaddr", None)  # fakepve makes a new one, as PVE's random_ether_addr
                value = ",".join(([name] if name else []) + [f"{k}={x}" for k, x in props.items()])
            if _CREATE_KEYS.match(key):
                request[key] = int(value) if value.isdigit() else value
            else:
                kept[key] = value
        if "rootfs" not in request and not any(re.fullmatch(r"mp\d+", k) for k in request):
            storage = v.get("storage") or "local"
            for key in sorted(k for k in archived if k == "rootfs" or re.fullmatch(r"mp\d+", k)):
                _, props = split_props(archived[key])
                size = _gib(props.pop("size", None))
                if size is None:
                    return await self._failed_restore(
                        user, v, f"unable to detect disk size - please specify {key} (size)"
                    )
                request[key] = ",".join([f"{storage}:{size}"] + [f"{k}={x}" for k, x in props.items()])
            if "rootfs" not in request:
                return await self._failed_restore(
                    user, v, "rootfs configuration could not be recovered, please check and specify manually!"
                )
        self.restored_from[vmid].append(volid)
        upid = await super()._lxc_create(user, request)  # type: ignore[misc]
        if self.container_files is not None:
            _extract_files(path, self.container_files(vmid))
        # fakepve derives ostype and arch from the ostemplate's name (a vzdump archive: "unmanaged");
        # PVE takes them from the archived config
        kept.update({key: archived[key] for key in ("ostype", "arch") if key in archived and key not in v})

        async def settle() -> None:
            while self.tasks[upid]["status"] == "running":  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            restored = self.ct(vmid)  # type: ignore[attr-defined]
            if restored is not None and self.tasks[upid].get("exitstatus") == "OK":  # type: ignore[attr-defined]
                restored.config.update(kept)

        if self.time_scale:  # type: ignore[attr-defined]
            self._settling.add(asyncio.ensure_future(settle()))
        else:
            await settle()
        return upid

    async def _failed_restore(self, user: str, v: dict[str, Any], reason: str) -> str:
        """A vzrestore task that fails; over an existing container (force) PVE has already
        destroyed the old volumes when extraction fails, so the container is gone too."""
        node, vmid = v["node"], int(v["vmid"])
        existing = self.ct(vmid)  # type: ignore[attr-defined]
        if existing is not None and existing.node == node:
            if not v.get("force"):
                raise PveError(500, f"CT {vmid} already exists on node '{node}'")
            if existing.status == "running":
                raise PveError(500, "can't overwrite running container")

        async def body() -> None:
            if existing is not None:
                self._drop(existing)  # type: ignore[attr-defined]
            raise TaskError(f"unable to restore CT {vmid} - {reason}")

        upid: str = await self.task(node, "vzrestore", vmid, user, body)  # type: ignore[attr-defined]
        return upid


_FILES_MEMBER = "./rootfs"
_SIZE_UNITS = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def _gib(size: str | None) -> int | float | None:
    """A mount point's ``size=`` (``8G``, ``512M``) in GiB, as PVE's create_disks takes it; None without one."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", size or "")
    if found is None:
        return None
    gib = float(found[1]) * _SIZE_UNITS[found[2]]
    return int(gib) if gib.is_integer() else gib


def _extract_files(archive: Path, target: Path) -> None:
    """The container's files from the archive (if it holds them) replace what ``target`` holds."""
    with tarfile.open(archive, "r:") as tar:
        members = []
        for member in tar.getmembers():
            if member.name == _FILES_MEMBER or member.name.startswith(_FILES_MEMBER + "/"):
                member.name = "." + member.name[len(_FILES_MEMBER) :]
                members.append(member)
        if not members:
            return
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        tar.extractall(target, members=members, filter="tar")


def _archive_bytes(config: dict[str, Any], files: Path | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        if files is not None:
            tar.add(files, arcname=_FILES_MEMBER, recursive=True)
        # raw lxc.* entries as their own lines, as in the config file vzdump copies
        text = "".join(f"{k}: {val}\n" for k, val in sorted(config.items()) if k != "lxc")
        text += "".join(f"{k}: {val}\n" for k, val in config.get("lxc") or ())
        for name, data in (
            (_CONFIG_MEMBER, text.encode()),
            ("./var/lib/proximity-harness/payload", os.urandom(PAYLOAD_BYTES)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
