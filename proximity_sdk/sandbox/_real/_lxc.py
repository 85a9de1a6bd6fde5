"""Real LXC containers for the sandbox's Proxmox: the few LXC commands real mode needs.

Every function is blocking (they run ``lxc-*`` commands and tar); the Proxmox side calls them in a
worker thread. Containers are privileged (root's ``/var/lib/lxc``), with a directory root
filesystem, ``lxcbr0`` (lxc-net's bridge with DHCP and NAT) as their network, AppArmor unconfined
and LXC's nesting config so that dockerd runs inside (see ``shared/reference/real-lxc.md``).
PVE's default is an unprivileged container on a volume; ``docs/real-node.md`` lists what differs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BRIDGE",
    "LXC_PATH",
    "LxcError",
    "RealConfig",
    "address",
    "archive",
    "copy_rootfs",
    "create_from_archive",
    "create_from_oci",
    "delete_snapshot",
    "destroy",
    "dhcp_running",
    "exists",
    "host_dhcp",
    "list_names",
    "missing",
    "rollback",
    "rootfs",
    "set_limits",
    "snapshot",
    "snapshot_dir",
    "start",
    "state",
    "stop",
    "sweep_orphans",
    "write_config",
]

LXC_PATH = Path(os.environ.get("PROXIMITY_LXC_PATH", "/var/lib/lxc"))
BRIDGE = "lxcbr0"
LXC_NET = "/usr/libexec/lxc/lxc-net"
# lxc-net's dnsmasq writes its pid here; a bridge can outlive it (the bridge is kernel state, the
# daemon a process that ends with the session that started it), and then no container gets a lease.
DHCP_PIDFILE = Path("/run/lxc/dnsmasq.pid")
# What every container's config includes, as on PVE (Debian package lxc-templates).
COMMON_CONFIG = Path("/usr/share/lxc/config/debian.common.conf")
_TOOLS = (
    "lxc-start",
    "lxc-stop",
    "lxc-info",
    "lxc-attach",
    "lxc-destroy",
    "lxc-wait",
    "lxc-cgroup",
    "lxc-freeze",
    "lxc-unfreeze",
    "tar",
    "zstd",
)
START_TIMEOUT = 30


class LxcError(Exception):
    """An LXC command failed; the message names the command and its output."""


def missing() -> list[str]:
    """What this machine lacks for real mode, each item saying how to get it (empty: ready)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("real mode runs privileged LXC containers: run it as root")
    absent = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if absent:
        problems.append(f"missing {', '.join(absent)}: apt-get install lxc zstd (or run scripts/real-node)")
    if not COMMON_CONFIG.exists():
        problems.append(f"missing {COMMON_CONFIG}: apt-get install lxc-templates (or run scripts/real-node)")
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        problems.append(f"no bridge {BRIDGE}: start it with {LXC_NET} start (or run scripts/real-node)")
    elif not dhcp_running():
        problems.append(
            f"the bridge {BRIDGE} has no DHCP server (lxc-net's dnsmasq is not running), so no "
            f"container would get an address: restart it with rm -f {DHCP_PIDFILE} /run/lxc/network_up; "
            f"{LXC_NET} start (or run scripts/real-node)"
        )
    return problems


def dhcp_running() -> bool:
    """Whether lxc-net's dnsmasq (the bridge's DHCP and DNS server) is alive."""
    try:
        pid = int(DHCP_PIDFILE.read_text().strip())
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dnsmasq"
    except (OSError, ValueError):
        return False


def _run(argv: list[str], *, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LxcError(f"{' '.join(argv)} did not end within {timeout:.0f} s") from exc
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise LxcError(
            f"command '{' '.join(argv)}' failed: exit code {result.returncode}" + (f": {output}" if output else "")
        )
    return result


def rootfs(name: str) -> Path:
    return LXC_PATH / name / "rootfs"


def exists(name: str) -> bool:
    return (LXC_PATH / name / "config").is_file()


def list_names(prefix: str) -> list[str]:
    """The containers whose name starts with ``prefix``."""
    if not LXC_PATH.is_dir():
        return []
    # a directory without a config is one whose create was interrupted: still ours to sweep
    return sorted(p.name for p in LXC_PATH.iterdir() if p.name.startswith(prefix) and p.is_dir())


def state(name: str) -> str | None:
    """``running`` or ``stopped`` as PVE says it (``lxc-info``'s state), None when there is no such container."""
    if not exists(name):
        return None
    result = _run(["lxc-info", "-n", name, "-sH"], check=False, timeout=30)
    return "running" if result.stdout.strip() in ("RUNNING", "FREEZING", "FROZEN", "THAWED") else "stopped"


def address(name: str) -> str | None:
    """The IPv4 address the container holds on the bridge (its DHCP lease), if any yet."""
    result = _run(["lxc-info", "-n", name, "-iH"], check=False, timeout=30)
    for line in result.stdout.split():
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", line) and not line.startswith("127."):
            return line
    return None


@dataclass(frozen=True)
class RealConfig:
    """What real mode carries over from the PVE config into the LXC config."""

    hostname: str
    hwaddr: str | None = None
    memory_mb: int | None = None
    cores: int | None = None
    #: an application container's init (PVE's ``entrypoint``), its environment (``env``) and the
    #: signal that stops it (the image's StopSignal, SIGTERM by default: ``restore_oci_archive``)
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    halt_signal: str | None = None
    #: where LXC copies the console (PVE passes the raw ``lxc.console.logfile`` of the container's
    #: config through: LXC.pm update_lxc_config), as a path on this machine
    console_logfile: str | None = None


def write_config(name: str, config: RealConfig) -> None:
    """The LXC config of container ``name`` (its rootfs directory must exist)."""
    lines = [
        "# made by Proximity's sandbox (real mode); PVE writes /var/lib/lxc/<vmid>/config the same way",
        f"lxc.include = {COMMON_CONFIG}",
        "lxc.include = /usr/share/lxc/config/nesting.conf",
        "lxc.apparmor.profile = unconfined",
        "lxc.arch = amd64",
        f"lxc.uts.name = {config.hostname}",
        f"lxc.rootfs.path = dir:{rootfs(name)}",
        "lxc.net.0.type = veth",
        f"lxc.net.0.link = {BRIDGE}",
        "lxc.net.0.flags = up",
        "lxc.net.0.name = eth0",
    ]
    if config.hwaddr:
        lines.append(f"lxc.net.0.hwaddr = {config.hwaddr.lower()}")
    # what PVE::LXC::update_lxc_config writes for an application container (PVE 9.1): its init is
    # the entrypoint, /dev/shm mounted since no init sets it up, the env as the init's environment
    # (PVE: lxc.environment.runtime, LXC 6; this node's LXC 5 knows only lxc.environment)
    if config.entrypoint and config.entrypoint != "/sbin/init":
        lines.append("lxc.mount.entry = shm dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0")
    if config.entrypoint:
        lines.append(f"lxc.init.cmd = {config.entrypoint}")
    lines += [f"lxc.environment = {variable}" for variable in config.env]
    if config.halt_signal:
        lines.append(f"lxc.signal.halt = {config.halt_signal}")
    if config.console_logfile:
        lines.append(f"lxc.console.logfile = {config.console_logfile}")
    lines += _limit_lines(config)
    (LXC_PATH / name / "config").write_text("\n".join(lines) + "\n")
    # PVE writes the hostname into the container at create and at every start (setup_init)
    etc = rootfs(name) / "etc"
    if etc.is_dir():
        (etc / "hostname").write_text(config.hostname + "\n")
        hosts = f"127.0.0.1 localhost\n127.0.1.1 {config.hostname}\n::1 localhost ip6-localhost ip6-loopback\n"
        (etc / "hosts").write_text(hosts)


def _limit_lines(config: RealConfig) -> list[str]:
    # cgroup v1 (this machine kind): memory.limit_in_bytes; cores as a CFS quota, as PVE's cpulimit
    # does (PVE's `cores` pins a cpuset instead; a quota keeps two containers from sharing cores badly)
    lines = []
    if config.memory_mb:
        lines.append(f"lxc.cgroup.memory.limit_in_bytes = {config.memory_mb * 1024 * 1024}")
    if config.cores:
        lines.append("lxc.cgroup.cpu.cfs_period_us = 100000")
        lines.append(f"lxc.cgroup.cpu.cfs_quota_us = {config.cores * 100000}")
    return lines


def set_limits(name: str, config: RealConfig) -> list[str]:
    """Apply memory/cores to a running container now (and to the config for its next start).

    Returns what could not be applied, in words (empty: all applied)."""
    write_config(name, config)
    if state(name) != "running":
        return []
    skipped = []
    if config.memory_mb:
        result = _run(
            ["lxc-cgroup", "-n", name, "memory.limit_in_bytes", str(config.memory_mb * 1024 * 1024)], check=False
        )
        if result.returncode != 0:
            skipped.append(f"memory {config.memory_mb} MiB: {result.stderr.strip()}")
    if config.cores:
        result = _run(["lxc-cgroup", "-n", name, "cpu.cfs_quota_us", str(config.cores * 100000)], check=False)
        if result.returncode != 0:
            skipped.append(f"cores {config.cores}: {result.stderr.strip()}")
    return skipped


def _compression(path: Path) -> list[str]:
    name = path.name
    if name.endswith(".tar.zst"):
        return ["--zstd"]
    if name.endswith((".tar.gz", ".tgz")):
        return ["--gzip"]
    if name.endswith(".tar.xz"):
        return ["--xz"]
    if name.endswith(".tar.lzo"):
        return ["--lzop"]
    if name.endswith(".tar"):
        return []
    raise LxcError(f"unable to detect the compression of '{path.name}' (tar, tar.zst, tar.gz, tar.xz or tar.lzo)")


def create_from_archive(name: str, source: Path, config: RealConfig, *, member_prefix: str = ".") -> None:
    """A stopped container whose root filesystem is unpacked from ``source`` (a template or a
    vzdump archive, as ``pct create`` unpacks either); rolls back on failure."""
    if exists(name):
        raise LxcError(f"LXC container {name} already exists")
    if not source.is_file():
        raise LxcError(f"volume '{source}' does not exist")
    root = rootfs(name)
    root.mkdir(parents=True)
    try:
        _mark_owner(name)  # first: a create killed half-way is an orphan the sweep finds
        _run(
            [
                "tar",
                "-x",
                "--numeric-owner",
                "--xattrs",
                "-p",
                *_compression(source),
                "-f",
                str(source),
                "-C",
                str(root),
                "--exclude=./etc/vzdump",
                member_prefix,
            ],
            timeout=600,
        )
        write_config(name, config)
    except BaseException:
        remove_files(name)
        raise


def create_from_oci(name: str, source: Path, config: RealConfig) -> None:
    """A stopped container whose root filesystem is the OCI image in ``source`` (an archive as
    ``oci-registry-pull`` stores it), unpacked with umoci; rolls back on failure."""
    from proximity_sdk.sandbox._real import _oci

    if exists(name):
        raise LxcError(f"LXC container {name} already exists")
    if not source.is_file():
        raise LxcError(f"volume '{source}' does not exist")
    (LXC_PATH / name).mkdir(parents=True)
    try:
        _mark_owner(name)
        _oci.unpack(source, rootfs(name), LXC_PATH / name / "oci")
        write_config(name, config)
    except _oci.OciError as exc:
        remove_files(name)
        raise LxcError(str(exc)) from exc
    except BaseException:
        remove_files(name)
        raise


_BUSYBOX = Path("/bin/busybox")
# udhcpc's event script: the lease into the interface (run in the container's network namespace)
_UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
    deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip -4 addr add "$ip/${mask:-24}" dev "$interface"
        if [ -n "$router" ]; then ip -4 route replace default via "${router%% *}" dev "$interface"; fi ;;
esac
"""


def host_dhcp(name: str, interface: str, hostname: str, *, timeout: float = 20) -> None:
    """Take a DHCP lease for ``interface`` from the host, in the container's network namespace:
    what PVE 9.1 does for a ``host-managed`` interface with ``ip=dhcp`` (``manage_dhclient``: the
    host's dhclient through ``lxc-attach -s NETWORK|UTSNAME``), with busybox's udhcpc here."""
    if not _BUSYBOX.exists():
        raise LxcError("host-managed DHCP needs /bin/busybox: apt-get install busybox-static")
    hook = LXC_PATH / name / "hook"
    hook.mkdir(exist_ok=True)
    script = hook / "udhcpc-script"
    script.write_text(_UDHCPC_SCRIPT)
    script.chmod(0o755)
    tries = max(1, int(timeout / 2))
    _run(
        [
            "lxc-attach",
            "-n",
            name,
            "-s",
            "NETWORK|UTSNAME",
            "--",
            str(_BUSYBOX),
            "udhcpc",
            "-i",
            interface,
            "-f",
            "-q",
            "-n",
            "-t",
            str(tries),
            "-T",
            "2",
            "-s",
            str(script),
            "-x",
            f"hostname:{hostname}",
        ],
        timeout=timeout + 10,
    )


_OWNER = "proximity-owner"


def _mark_owner(name: str) -> None:
    # the process whose sandbox made it: a container whose process died (SIGKILL, a crashed test
    # worker) is an orphan that sweep_orphans() may remove; one of a living process never is
    (LXC_PATH / name / _OWNER).write_text(f"{os.getpid()}\n")


def owner(name: str) -> int | None:
    """The process id of the sandbox that made the container (None: not made by a sandbox)."""
    try:
        return int((LXC_PATH / name / _OWNER).read_text().strip())
    except (OSError, ValueError):
        return None


def sweep_orphans(prefix: str) -> list[str]:
    """Destroy the containers named ``prefix...`` whose sandbox process is gone; their names."""
    gone = []
    for name in list_names(prefix):
        pid = owner(name)
        if pid is None or Path(f"/proc/{pid}").exists():
            continue
        destroy(name)
        gone.append(name)
    return gone


def copy_rootfs(source: str, target: str, config: RealConfig, *, snapname: str | None = None) -> None:
    """``target`` as a full copy of the stopped container ``source``, or of its snapshot (a clone);
    rolls back on failure."""
    if exists(target):
        raise LxcError(f"LXC container {target} already exists")
    origin = snapshot_dir(source, snapname) / "rootfs" if snapname else rootfs(source)
    if not origin.is_dir():
        raise LxcError(f"nothing to clone at {origin}")
    (LXC_PATH / target).mkdir(parents=True)
    try:
        _mark_owner(target)
        _run(["cp", "-a", "--reflink=auto", str(origin), str(rootfs(target))], timeout=600)
        write_config(target, config)
    except BaseException:
        remove_files(target)
        raise


def snapshot_dir(name: str, snapname: str) -> Path:
    """Where a snapshot's copy of the root filesystem lies."""
    return LXC_PATH / name / "px-snapshots" / snapname


def snapshot(name: str, snapname: str) -> None:
    """A copy of the root filesystem as it is now; a running container is frozen meanwhile, so the
    copy is consistent as a storage snapshot of a frozen container is on PVE."""
    target = snapshot_dir(name, snapname)
    if target.exists():
        raise LxcError(f"snapshot name '{snapname}' already used")
    target.mkdir(parents=True)
    frozen = state(name) == "running" and _run(["lxc-freeze", "-n", name], check=False).returncode == 0
    try:
        _run(["cp", "-a", "--reflink=auto", str(rootfs(name)), str(target / "rootfs")], timeout=600)
    except BaseException:
        _run(["rm", "-rf", "--one-file-system", str(target)], check=False)
        raise
    finally:
        if frozen:
            _run(["lxc-unfreeze", "-n", name], check=False)


def delete_snapshot(name: str, snapname: str) -> None:
    target = snapshot_dir(name, snapname)
    if target.exists():
        _run(["rm", "-rf", "--one-file-system", str(target)], timeout=300)


def rollback(name: str, snapname: str) -> None:
    """The root filesystem back as the snapshot has it (the container must be stopped)."""
    source = snapshot_dir(name, snapname) / "rootfs"
    if not source.is_dir():
        raise LxcError(f"snapshot '{snapname}' has no copy of the root filesystem")
    if state(name) == "running":
        raise LxcError(f"can't roll back the running container {name}")
    root = rootfs(name)
    staged = root.with_name("rootfs.rollback")
    _run(["rm", "-rf", "--one-file-system", str(staged)], check=False)
    _run(["cp", "-a", "--reflink=auto", str(source), str(staged)], timeout=600)
    old = root.with_name("rootfs.old")
    os.replace(root, old)
    os.replace(staged, root)
    _run(["rm", "-rf", "--one-file-system", str(old)], timeout=300)


def archive(name: str, target: Path, pct_conf: str) -> None:
    """A vzdump-style archive of the container: its root filesystem at ``./`` and the PVE config at
    ``./etc/vzdump/pct.conf`` (how PVE's VZDump::LXC lays it out); compression from the file name.
    (A restore leaves ``./etc/vzdump`` out, so a container has none of its own to collide with.)"""
    staging = LXC_PATH / name / "vzdump"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "etc/vzdump").mkdir(parents=True)
    (staging / "etc/vzdump/pct.conf").write_text(pct_conf)
    partial = target.with_name(target.name + ".tmp")
    # A directory root filesystem has no storage snapshot: PVE's vzdump then falls back from
    # snapshot to suspend mode, whose last pass copies the files with the container frozen
    # (pve-manager PVE/VZDump.pm exec_backup_task "mode failure"; pve-container VZDump/LXC.pm
    # copy_data_phase2). Frozen here too: a live tar fails on files changed while it reads them.
    frozen = state(name) == "running" and _run(["lxc-freeze", "-n", name], check=False).returncode == 0
    try:
        _run(
            [
                "tar",
                "-c",
                "--numeric-owner",
                "--xattrs",
                "--sparse",
                *_compression(target),
                "-f",
                str(partial),
                "-C",
                str(rootfs(name)),
                ".",
                "-C",
                str(staging),
                "./etc/vzdump",
            ],
            timeout=600,
        )
        os.replace(partial, target)
    finally:
        if frozen:
            _run(["lxc-unfreeze", "-n", name], check=False)
        partial.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


def split_init_cmd(command: str) -> list[str]:
    """The argv LXC 6 starts for ``lxc.init.cmd = command``: ``do_lxcapi_start`` splits it with
    ``lxc_string_split_quoted`` (src/lxc/string_utils.c; lxc/lxc#4336, LXC 6.0; LXC 5's
    ``split_init_cmd`` split on spaces only). Words end at whitespace; a word that starts with
    ``'`` or ``"`` runs to the next same quote, which ends it, and is kept without the quotes;
    a quote inside a word is a plain character; nothing is escaped (backslashes are kept), and an
    unclosed quoted word is dropped. So a shell-quoted ``'\\''`` (PVE's quote inside quotes) does
    not survive: an image argument holding a single quote reaches its program mangled."""
    words: list[str] = []
    state = " "
    start = 0
    for i, char in enumerate(command):
        if state == " ":
            if char.isspace():
                continue
            start = i
            state = char if char in "'\"" else "a"
        elif state == "a":
            if char.isspace():
                words.append(command[start:i])
                state = " "
        elif char == state:
            words.append(command[start + 1 : i])
            state = " "
    if state == "a":
        words.append(command[start:])
    return words


def _init_cmd(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in (LXC_PATH / name / "config").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "lxc.init.cmd":
                return value.strip()
    return None


def start(name: str, *, timeout: float = START_TIMEOUT, may_exit: bool = False) -> None:
    """Start the container and wait for RUNNING. ``may_exit``: an application container whose init
    (its entrypoint) already ended counts as started: PVE's start only runs ``systemctl start
    pve-container@<vmid>`` (``Type=simple``, ``lxc-start -F``), which succeeds once lxc-start runs.

    An ``lxc.init.cmd`` is given to lxc-start as its command, split as PVE 9.1's LXC 6 splits it
    (:func:`split_init_cmd`): this machine's LXC 5 would split it on every space."""
    command = _init_cmd(name)
    argv = ["lxc-start", "-n", name, "-d"] + (["--", *split_init_cmd(command)] if command else [])
    _run(argv, timeout=timeout)
    states = "RUNNING|STOPPED" if may_exit else "RUNNING"
    try:
        _run(["lxc-wait", "-n", name, "-s", states, "-t", str(int(timeout))], timeout=timeout + 5)
    except LxcError:
        if not (may_exit and state(name) == "stopped"):
            raise


def stop(name: str, *, kill: bool, timeout: float = 60) -> bool:
    """Stop the container: a clean shutdown within ``timeout`` seconds, or at once with ``kill``.
    False when a clean shutdown did not end in time (the container still runs)."""
    if state(name) != "running":
        return True
    argv = ["lxc-stop", "-n", name] + (["-k"] if kill else ["-t", str(int(timeout)), "--nokill"])
    result = _run(argv, timeout=timeout + 15, check=False)
    if result.returncode != 0 and state(name) == "running":
        if kill:
            raise LxcError(f"lxc-stop -k of {name} failed: {result.stderr.strip()}")
        return False
    return True


LEASES = Path("/var/lib/misc/dnsmasq.lxcbr0.leases")


def _hwaddr(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in (LXC_PATH / name / "config").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "lxc.net.0.hwaddr":
                return value.strip().lower()
    return None


def release_lease(hwaddr: str | None) -> bool:
    """Hand the container's DHCP lease back to lxc-net's dnsmasq (``dhcp_release``, Debian package
    dnsmasq-utils): a test run makes many containers with new MACs, and the 253 addresses of
    lxcbr0 would otherwise stay taken for the lease time (an hour). False when nothing was released."""
    if not hwaddr or shutil.which("dhcp_release") is None:
        return False
    with contextlib.suppress(OSError):
        for line in LEASES.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1].lower() == hwaddr:
                client_id = [fields[4]] if len(fields) >= 5 and fields[4] != "*" else []
                return _run(["dhcp_release", BRIDGE, fields[2], hwaddr, *client_id], check=False).returncode == 0
    return False


def destroy(name: str) -> None:
    """Stop (kill) and remove the container and its files, and release its DHCP lease; nothing to
    do when it is absent."""
    if not (LXC_PATH / name).exists():
        return
    if exists(name) and state(name) == "running":
        stop(name, kill=True)
    release_lease(_hwaddr(name))
    result = _run(["lxc-destroy", "-n", name], check=False, timeout=120) if exists(name) else None
    if result is None or result.returncode != 0 or (LXC_PATH / name).exists():
        remove_files(name)


def remove_files(name: str) -> None:
    """Remove the container's directory, never crossing into a mount (a running container's /proc)."""
    where = LXC_PATH / name
    if not where.exists():
        return
    if _mounts_under(where):
        raise LxcError(f"{where} still has mounts under it; not removing it")
    _run(["rm", "-rf", "--one-file-system", str(where)], timeout=300)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with contextlib.suppress(OSError), open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    return []


def wait_address(name: str, timeout: float) -> str | None:
    """The container's address once it has one, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = address(name)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.25)
