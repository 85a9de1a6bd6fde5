"""The `pct` stand-in: records every call, and runs containers as chroots under the state dir.

A container ``<vmid>`` is the directory ``<state>/ct/<vmid>``, made on first use: empty
``etc opt root tmp var run``, an Alpine ``/etc/os-release``, and the usr-merged links
``bin sbin lib lib64 -> usr/...``. Its status is ``<state>/ct-status/<vmid>`` (default running).

- ``pct exec <vmid> [--] cmd...`` runs ``cmd`` in a private mount namespace,
  chrooted into the container dir, with the host's ``/usr`` bound read-only (so ``sh`` and
  coreutils are real), the container tool stand-ins first on PATH, ``/root`` as cwd and a clean
  environment. Files a script writes to ``/opt/x`` land in ``<state>/ct/<vmid>/opt/x``; nothing
  is written outside the state dir.
- ``pct push <vmid> <file> <dest> [--perms P] [--user U] [--group G]`` and ``pct pull`` copy
  between the node and the container dir, with the real command's rules and messages (the
  parent directory must exist; perms are octal by default).
- ``pct status <vmid>`` prints ``status: <status>``.

With a node table (``<state>/nodes.json``, written by the sandbox's Proxmox, see
``proximity_sdk/sandbox/_real/_table.py``) ``pct`` answers from the containers of the node it runs
on (found from the server address in ``SSH_CONNECTION``), as pve-container's ``pct.pm`` does:
exec into an absent container or one on another node fails with ``Configuration file
'nodes/<node>/lxc/<vmid>.conf' does not exist``, into a stopped one with ``container '<vmid>' not
running!`` (both exit 255), push and pull need a running container; ``pct list`` and ``pct config``
read the table. In real mode (``"real": true``) the containers are LXC containers: status is
``lxc-info``'s, exec is ``lxc-attach`` (``--keep-env`` by default as PVE 8/9's ``pct exec``, with
the node's root PATH; ``--keep-env 0`` clears it), push and pull open the files inside the
container's mount namespace, as ``pct push``/``pull`` do.
"""

from __future__ import annotations

import os
import sys

from _standin import answer, locked, record, state_dir, take_rule

STANDINS = os.path.dirname(os.path.realpath(__file__))

_OS_RELEASE = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n'

_CT_PATH = "/.standins/ct:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Mount flags (linux/mount.h) and the statvfs flags that must survive a read-only remount.
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_KEEP_FLAGS = {2: 2, 4: 4, 8: 8, 1024: 1024, 2048: 2048, 4096: 1 << 21}  # nosuid nodev noexec *atime


def _die(message: str, code: int = 255) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    raise SystemExit(code)


def _vmid(raw: str) -> str:
    if not raw.isdigit() or not 100 <= int(raw) <= 999_999_999:
        _die(f"400 Parameter verification failed.\nvmid: invalid format - value {raw!r} is not a valid VM ID")
    return str(int(raw))


def container_root(state: str, vmid: str) -> str:
    """The container's directory, laid out on first use."""
    root = os.path.join(state, "ct", vmid)
    os.makedirs(os.path.join(state, "ct"), exist_ok=True)
    with locked(os.path.join(state, "ct", ".lock")):
        if os.path.isdir(os.path.join(root, ".standins")):
            return root
        for sub in ("usr", "etc", "opt", "root", "tmp", "var", "run", "dev", ".standins", ".standin-state"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)  # noqa: S103 - a container's /tmp is world-writable
        for link, target in (
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ):
            if not os.path.lexists(os.path.join(root, link)):
                os.symlink(target, os.path.join(root, link))
        for dev in ("null", "zero", "random", "urandom"):
            open(os.path.join(root, "dev", dev), "ab").close()  # bind-mount targets
        if not os.path.exists(os.path.join(root, "etc", "os-release")):
            with open(os.path.join(root, "etc", "os-release"), "w", encoding="utf-8") as fh:
                fh.write(_OS_RELEASE)
            with open(os.path.join(root, "etc", "passwd"), "w", encoding="utf-8") as fh:
                fh.write("root:x:0:0:root:/root:/bin/sh\n")
    return root


_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a PVE node's root PATH


def _table(state: str) -> dict | None:
    path = os.path.join(state, "nodes.json")
    if not os.path.exists(path):
        return None
    import json

    with open(path, encoding="utf-8") as fh:
        table: dict = json.load(fh)
    return table


def _this_node(table: dict) -> str | None:
    """The node whose shell this is (None: its address stands for several nodes, or is unknown)."""
    connection = os.environ.get("SSH_CONNECTION", "").split()
    if len(connection) < 3:
        return None
    addresses: dict[str, str] = table.get("addresses") or {}
    return addresses.get(connection[2])


def _entry(table: dict, vmid: str) -> dict | None:
    """The container as this node knows it; dies as pct does when the node has no such container."""
    node = _this_node(table)
    for name, cts in (table.get("nodes") or {}).items():
        if vmid in cts and (node is None or name == node):
            entry: dict = dict(cts[vmid], node=name)
            if table.get("real") and entry.get("lxc"):
                entry["status"] = _lxc_state(entry["lxc"])
            return entry
    _die(f"Configuration file 'nodes/{node or 'localhost'}/lxc/{vmid}.conf' does not exist")
    return None


def _lxc_state(name: str) -> str:
    import subprocess

    result = subprocess.run(["lxc-info", "-n", name, "-sH"], capture_output=True, text=True, check=False)
    return "running" if result.stdout.strip() in ("RUNNING", "FROZEN") else "stopped"


def _lxc_pid(name: str) -> int:
    import subprocess

    result = subprocess.run(["lxc-info", "-n", name, "-pH"], capture_output=True, text=True, check=False)
    text = result.stdout.strip()
    if not text.isdigit():
        _die(f"unable to get PID for CT {name}")
    return int(text)


def _enter_namespace(pid: int) -> None:
    """Join the container's mount namespace, as pct push/pull do (PVE::Tools::setns)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    if libc.setns(fd, 0x00020000) != 0:
        _die("failed to enter the container's mount namespace")
    os.close(fd)
    os.chdir("/")


def _status(state: str, vmid: str) -> str:
    table = _table(state)
    if table is not None:
        entry = _entry(table, vmid)
        return str(entry["status"]) if entry else "stopped"
    try:
        with open(os.path.join(state, "ct-status", vmid), encoding="utf-8") as fh:
            return fh.read().strip() or "running"
    except FileNotFoundError:
        return "running"


def _inside(root: str, path: str) -> str:
    """Host path of an absolute container path; refuses paths whose parent escapes the root."""
    if not path.startswith("/"):
        _die(f"destination '{path}' must be an absolute path inside the container")
    host = os.path.join(root, path.lstrip("/"))
    parent = os.path.realpath(os.path.dirname(host))
    if parent != root and not parent.startswith(root + os.sep):
        _die(f"path '{path}' leaves the container")
    return os.path.join(parent, os.path.basename(host))


def _options(args: list[str], count: int, usage: str) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and arg[2:].split("=", 1)[0] in ("perms", "user", "group"):
            if "=" in arg:
                key, value = arg[2:].split("=", 1)
            else:
                if i + 1 >= len(args):
                    _die(f"400 Parameter verification failed.\n{arg[2:]}: missing value\n{usage}")
                key, value = arg[2:], args[i + 1]
                i += 1
            opts[key] = value
        else:
            positional.append(arg)
        i += 1
    if len(positional) != count:
        _die(f"400 wrong number of arguments\n{usage}")
    return positional, opts


def _create(path: str, opts: dict[str, str], *, shown: str) -> int:
    """Open ``path`` for writing like pct's create_file: explicit perms and owner, no umask.

    ``shown`` is the path as the caller named it, for the error message.
    """
    perms = opts.get("perms")
    mode: int | None = None
    if perms is not None:
        text = perms if perms.startswith("0") else "0" + perms
        try:
            mode = int(text, 16) if text.lower().startswith("0x") else int(text, 8)
        except ValueError:
            _die(f"invalid mode: '{perms}'")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    except OSError as exc:
        _die(f"failed to create file: {shown}: {exc.strerror}")
    if mode is not None:
        os.fchmod(fd, mode)
    uid = gid = -1
    for key in ("user", "group"):
        value = opts.get(key)
        if value is None:
            continue
        if value == "root":
            value = "0"
        if not value.isdigit():
            _die(f"failed to get {'uid' if key == 'user' else 'gid'} for: {value}")
        if key == "user":
            uid = int(value)
        else:
            gid = int(value)
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)
    return fd


def _exec(state: str, args: list[str]) -> None:
    if not args:
        _die("400 not enough arguments\npct exec <vmid> [<extra-args>]")
    keep_env = True  # pct exec's default (pct.pm: keep-env defaults to 1)
    while len(args) > 1 and args[1].startswith("--keep-env"):
        value = args[1].partition("=")[2]
        if not value:
            value, args = (args[2], args[:1] + args[3:]) if len(args) > 2 else ("1", args[:1])
        else:
            args = args[:1] + args[2:]
        keep_env = value not in ("0", "false", "no", "off")
    vmid = _vmid(args[0])
    command = args[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        _die("missing command")
    table = _table(state)
    if table is not None:
        entry = _entry(table, vmid)
        assert entry is not None
        if entry["status"] != "running":
            _die(f"container '{vmid}' not running!")
        if table.get("real"):
            _attach(entry["lxc"], command, keep_env=keep_env)
    elif _status(state, vmid) != "running":
        _die(f"container '{vmid}' not running!")  # pct.pm exec, before lxc-attach runs
    root = container_root(state, vmid)
    _enter(root, state)
    env = {
        "PATH": _CT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PROXIMITY_STANDIN_STATE": "/.standin-state",
        "PROXIMITY_STANDIN_VMID": vmid,
    }
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the container's command, as a vector
    except OSError as exc:
        _die(
            f'lxc-attach: {vmid}: attach.c: lxc_attach_run_command: Failed to exec "{command[0]}": {exc.strerror}',
            127,
        )


def _attach(name: str, command: list[str], *, keep_env: bool) -> None:
    """Run the command in the real container, as pct exec does: lxc-attach, exit status kept."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PROXIMITY_STANDIN_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    env["PATH"] = _ROOT_PATH
    argv = ["lxc-attach", "-n", name, "--keep-env" if keep_env else "--clear-env", "--", *command]
    try:
        os.execvpe("lxc-attach", argv, env)  # noqa: S606 - the container's command, as a vector
    except OSError as exc:
        _die(f"pct: lxc-attach: {exc.strerror}", 255)


def _real_push(name: str, src: str, dest: str, opts: dict[str, str]) -> None:
    import shutil  # noqa: F401 - before the namespace switch: the host's modules are not visible after it

    try:
        source = open(src, "rb")  # noqa: SIM115 - closed below
    except OSError:
        _die(f"failed to open {src} for reading")
    with source:
        _enter_namespace(_lxc_pid(name))
        fd = _create(dest, opts, shown=dest)
        with os.fdopen(fd, "wb") as target:
            _copy(source, target)


def _real_pull(name: str, path: str, dest: str, opts: dict[str, str]) -> None:
    import shutil  # noqa: F401 - before the namespace switch: the host's modules are not visible after it

    pid = _lxc_pid(name)
    fd = _create(dest, opts, shown=dest)
    with os.fdopen(fd, "wb") as target:
        _enter_namespace(pid)
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            _die(f"failed to open {path}: {exc.strerror}")
        with source:
            _copy(source, target)


def _real_entry(state: str, vmid: str) -> dict | None:
    """The real container's table entry when the node is real, else None."""
    table = _table(state)
    if table is None or not table.get("real"):
        return None
    node = _this_node(table)
    for name, cts in (table.get("nodes") or {}).items():
        if vmid in cts and (node is None or name == node):
            return dict(cts[vmid], node=name)
    return {}


def _list(state: str) -> None:
    table = _table(state)
    if table is None:
        _die("pct list: no node table in this sandbox")
    assert table is not None
    node = _this_node(table)
    rows = []
    for name, cts in sorted((table.get("nodes") or {}).items()):
        if node is not None and name != node:
            continue
        for vmid, entry in cts.items():
            status = _lxc_state(entry["lxc"]) if table.get("real") and entry.get("lxc") else entry["status"]
            rows.append((int(vmid), status, entry.get("lock", ""), entry.get("config", {}).get("hostname", "")))
    print(f"{'VMID':<10} {'Status':<10} {'Lock':<12} Name")
    for vmid_number, status, lock, hostname in sorted(rows):
        print(f"{vmid_number:<10} {status:<10} {lock:<12} {hostname}")


def _config(state: str, rest: list[str]) -> None:
    if len(rest) != 1:
        _die("400 wrong number of arguments\npct config <vmid> [OPTIONS]")
    vmid = _vmid(rest[0])
    table = _table(state)
    if table is None:
        _die("pct config: no node table in this sandbox")
    assert table is not None
    entry = _entry(table, vmid)
    assert entry is not None
    for key, value in sorted(entry.get("config", {}).items()):
        if key != "lock":
            print(f"{key}: {value}")
    if entry.get("lock"):
        print(f"lock: {entry['lock']}")


def _enter(root: str, state: str) -> None:
    """Move this process into the container: a private mount namespace, binds, chroot.

    Done in-process (ctypes) rather than with unshare/mount/chroot commands: that is half the
    cost of every `pct exec`. The mounts vanish with the namespace when the command ends.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            _die(f"pct stand-in: {what}: {os.strerror(ctypes.get_errno())}", 1)

    def bind(source: str, target: str, *, read_only: bool) -> None:
        check(libc.mount(source.encode(), target.encode(), None, _MS_BIND, None), f"bind {source}")
        if read_only:
            kept = os.statvfs(source).f_flag
            flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
            flags |= sum(ms for st, ms in _KEEP_FLAGS.items() if kept & st)
            check(libc.mount(None, target.encode(), None, flags, None), f"read-only {target}")

    if os.geteuid() == 0:
        check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")  # CLONE_NEWNS
    else:  # the sandbox run by a normal user: a user namespace in which it is root grants the mounts
        uid, gid = os.geteuid(), os.getegid()
        check(libc.unshare(0x10000000 | 0x00020000), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as fh:
                fh.write(text)
    check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "private mounts")
    bind("/usr", os.path.join(root, "usr"), read_only=True)
    bind(STANDINS, os.path.join(root, ".standins"), read_only=True)
    bind(state, os.path.join(root, ".standin-state"), read_only=False)
    for dev in ("null", "zero", "random", "urandom"):
        bind(f"/dev/{dev}", os.path.join(root, "dev", dev), read_only=False)
    os.chroot(root)
    os.chdir("/root")


def _copy(source: object, target: object) -> None:
    import shutil  # only push and pull need it; importing it costs every call ~10 ms

    shutil.copyfileobj(source, target)  # type: ignore[arg-type]


def _push(state: str, args: list[str]) -> None:
    usage = "pct push <vmid> <file> <destination> [OPTIONS]"
    (raw_vmid, src, dest), opts = _options(args, 3, usage)
    vmid = _vmid(raw_vmid)
    real = _real_entry(state, vmid)
    if real is not None:
        if not real or _lxc_state(real["lxc"]) != "running":
            _die("can only push files to a running CT")
        _real_push(real["lxc"], src, dest, opts)
        return
    if _status(state, vmid) != "running":
        _die("can only push files to a running CT")
    root = container_root(state, vmid)
    try:
        source = open(src, "rb")  # noqa: SIM115 - closed below, after the copy
    except OSError:
        _die(f"failed to open {src} for reading")
    with source:
        fd = _create(_inside(root, dest), opts, shown=dest)
        with os.fdopen(fd, "wb") as target:
            _copy(source, target)


def _pull(state: str, args: list[str]) -> None:
    usage = "pct pull <vmid> <path> <destination> [OPTIONS]"
    (raw_vmid, path, dest), opts = _options(args, 3, usage)
    vmid = _vmid(raw_vmid)
    real = _real_entry(state, vmid)
    if real is not None:
        if not real or _lxc_state(real["lxc"]) != "running":
            _die("can only pull files from a running VM")
        _real_pull(real["lxc"], path, dest, opts)
        return
    if _status(state, vmid) != "running":
        _die("can only pull files from a running VM")
    root = container_root(state, vmid)
    fd = _create(dest, opts, shown=dest)
    with os.fdopen(fd, "wb") as target:
        try:
            source = open(_inside(root, path), "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            _die(f"failed to open {path}: {exc.strerror}")
        with source:
            _copy(source, target)


def main(args: list[str]) -> None:
    state = state_dir()
    record(state, "pct", args)
    rule = take_rule(state, "pct", args)
    if rule is not None:
        raise SystemExit(answer(rule))
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "exec":
        _exec(state, rest)
    elif command == "push":
        _push(state, rest)
    elif command == "pull":
        _pull(state, rest)
    elif command == "status":
        if len(rest) != 1:
            _die("400 wrong number of arguments\npct status <vmid>")
        vmid = _vmid(rest[0])
        print(f"status: {_status(state, vmid)}")
    elif command == "list":
        _list(state)
    elif command == "config":
        _config(state, rest)
    else:
        _die(f"ERROR: unknown command 'pct {command}'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]")
    raise SystemExit(0)
