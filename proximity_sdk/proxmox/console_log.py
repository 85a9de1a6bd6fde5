"""The console log of a native OCI app container, kept on its node (through the node shell).

Proxmox keeps no record of what an application container prints: ``pve-container@.service``
starts it with ``lxc-start -F`` and ``StandardOutput=null``, and its console (``cmode: console``,
``lxc-console -n <vmid> -t 0``) is live only. LXC can copy the console into a file
(``lxc.console.logfile``), and PVE passes that raw key from ``/etc/pve/lxc/<vmid>.conf`` to LXC;
the API cannot set raw ``lxc.*`` keys, so Proximity writes it into the config file on the node,
before the container's first start. Sources in docs/fidelity.md ("Console log of OCI apps").

Node layout (one file per container, named after its VMID, so a clone or a restore into a new
VMID gets its own file once its config names it):

- ``/var/log/proximity/ct-<vmid>.console.log``: the console output, written by LXC (it opens the
  file ``O_APPEND``, so logrotate's ``copytruncate`` loses nothing but the lines written during
  the copy);
- ``/etc/logrotate.d/proximity-console``: keeps every such file below :data:`ROTATE_SIZE` at each
  logrotate run (daily on Debian), one previous copy kept.

The config edit holds PVE's own lock of the container's config (``flock`` on
``/run/lock/lxc/pve-config-<vmid>.lock``, as ``PVE::LXC::Config->lock_config`` does) and writes the
file as PVE does (a temporary file renamed over it).

A node whose shell sets ``PROXIMITY_NODE_ROOT`` keeps these paths under ``$PROXIMITY_NODE_ROOT/<node>``:
the sandbox's node shell does (one machine stands for every node), so that its Proxmox (which
keeps the container configs) and its real containers find them there; on a Proxmox node it is
unset and the paths are the node's own.
"""

from __future__ import annotations

from proximity_sdk.errors import CommandFailedError
from proximity_sdk.proxmox.shell import NodeShell

__all__ = [
    "CONSOLE_LOG_DIR",
    "LOGROTATE_FILE",
    "ROTATE_SIZE",
    "console_log_path",
    "prepare_node",
    "read_console",
    "record_console",
    "remove_console",
]

CONSOLE_LOG_DIR = "/var/log/proximity"
LOGROTATE_FILE = "/etc/logrotate.d/proximity-console"
ROTATE_SIZE = "10M"
_TIMEOUT = 60.0
# exit statuses of the scripts below that are answers, not failures
_NO_CONFIG = 3
_SECTIONS = 4
_NO_FILE = 5

_ROTATE_RULE = f"""\
# Proximity: console logs of native OCI app containers (lxc.console.logfile in /etc/pve/lxc/<vmid>.conf)
{CONSOLE_LOG_DIR}/ct-*.console.log {{
    size {ROTATE_SIZE}
    rotate 1
    copytruncate
    missingok
    notifempty
}}
"""

# Every script: $1 = the node, whose files are under $r (empty on a Proxmox node).
_ROOT = "r=${PROXIMITY_NODE_ROOT:+$PROXIMITY_NODE_ROOT/$1}\n"

# $2 = the logrotate rule. The log directory and the rotation rule, both idempotent: the rule file
# is replaced only when its text differs. A node without /etc/logrotate.d gets no rule (and the
# caller is told so on stdout).
_PREPARE = (
    "set -eu\n"
    + _ROOT
    + f"""\
mkdir -p "$r{CONSOLE_LOG_DIR}"
chmod 0750 "$r{CONSOLE_LOG_DIR}"
rule="$r{LOGROTATE_FILE}"
if [ -d "${{rule%/*}}" ]; then
    if ! printf '%s' "$2" | cmp -s - "$rule" 2>/dev/null; then
        printf '%s' "$2" > "$rule.tmp.$$"
        chmod 0644 "$rule.tmp.$$"
        mv -f "$rule.tmp.$$" "$rule"
    fi
else
    echo "no ${{rule%/*}}: the console log is not rotated"
fi
"""
)

# $1 = node, $2 = rule, $3 = vmid, $4 = log path. After _PREPARE: the key in the container's
# config, under PVE's config lock. Any earlier lxc.console.logfile line is replaced (a clone's copy
# names its source's file). Only a config without sections: PVE writes raw keys at the end of the
# current config, before [pve:pending] and the snapshots (write_pct_config), so appending there
# would put the key into the wrong section.
_RECORD = (
    _PREPARE
    + f"""\
conf="$r/etc/pve/nodes/$1/lxc/$3.conf"
if [ ! -f "$conf" ]; then
    echo "CT $3 has no configuration on node $1 (/etc/pve/nodes/$1/lxc/$3.conf)" >&2
    exit {_NO_CONFIG}
fi
mkdir -p "$r/run/lock/lxc"
exec 9>"$r/run/lock/lxc/pve-config-$3.lock"
if ! flock -w 10 9; then
    echo "CT $3: its config stayed locked for 10 s (pve-config-$3.lock): another change is under way" >&2
    exit 1
fi
if grep -q '^\\[' "$conf"; then
    echo "CT $3 has snapshots or pending changes: its config cannot take a raw key at the end" >&2
    exit {_SECTIONS}
fi
{{ grep -v '^lxc\\.console\\.logfile[[:space:]]*[:=]' "$conf" || true; printf 'lxc.console.logfile: %s\\n' "$4"; }} \\
    > "$conf.tmp.$$"
mv -f "$conf.tmp.$$" "$conf"
"""
)

# $2 = lines, $3 = log path
_READ = (
    _ROOT
    + f"""\
[ -f "$r$3" ] || exit {_NO_FILE}
exec tail -n "$2" -- "$r$3"
"""
)

# $2 = log path: the file and logrotate's previous copy
_REMOVE = (
    _ROOT
    + """\
rm -f -- "$r$2" "$r$2.1"
"""
)


def console_log_path(vmid: int) -> str:
    """Where the node keeps the console output of container ``vmid``."""
    return f"{CONSOLE_LOG_DIR}/ct-{int(vmid)}.console.log"


def prepare_node(shell: NodeShell, node: str) -> str:
    """The log directory and the rotation rule on ``node`` (e.g. a migration's target, before the
    container starts there: LXC fails the start when it cannot open the log file). Returns a note
    ('' when all is in place)."""
    result = shell.run(node, ["sh", "-c", _PREPARE, "sh", node, _ROTATE_RULE], timeout=_TIMEOUT)
    return result.stdout.strip()


def record_console(shell: NodeShell, node: str, vmid: int) -> str:
    """Name :func:`console_log_path` in container ``vmid``'s config on ``node`` (stopped, before its
    start) and prepare the node. Returns a note ('' when all is in place); raises
    :class:`CommandFailedError` when the config cannot take the key."""
    result = shell.run(
        node, ["sh", "-c", _RECORD, "sh", node, _ROTATE_RULE, str(int(vmid)), console_log_path(vmid)], timeout=_TIMEOUT
    )
    return result.stdout.strip()


def read_console(shell: NodeShell, node: str, vmid: int, *, tail: int) -> str | None:
    """The last ``tail`` lines of the container's console log; None when the file is not there
    (the container has not started since its config named it, or the file was removed)."""
    result = shell.run(
        node, ["sh", "-c", _READ, "sh", node, str(int(tail)), console_log_path(vmid)], timeout=_TIMEOUT, check=False
    )
    if result.exit_status == _NO_FILE:
        return None
    if result.exit_status != 0:
        raise CommandFailedError(
            f"reading the console log of CT {vmid} on node {node} failed",
            exit_status=result.exit_status,
            stderr_tail=result.stderr[-2000:],
        )
    return result.stdout


def remove_console(shell: NodeShell, node: str, vmid: int) -> None:
    """Remove the container's console log (and its rotated copy) from ``node``."""
    shell.run(node, ["sh", "-c", _REMOVE, "sh", node, console_log_path(vmid)], timeout=_TIMEOUT)
