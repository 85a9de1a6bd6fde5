"""The lifecycle listener registered under the ``proximity`` entry-point group.

After an operation succeeds: an app that is ``running`` with an address gets (or keeps) its line;
an app that is gone (``None`` after a delete) or ``removing``/``vanished`` loses it, found by
``operation.app_id``. Any other state (``stopped``, ``error``, ...) leaves its line as it is: a
stopped container keeps its name, and a failed operation has been rolled back to what was before.
"""

from __future__ import annotations

import logging
import subprocess
from typing import TYPE_CHECKING

from proximity_hosts.config import HostsConfig
from proximity_hosts.hostsfile import HostsFile, HostsFileError
from proximity_hosts.names import is_valid_hostname, parse_address
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import AppStatus
from proximity_sdk.plugins import hookimpl

if TYPE_CHECKING:
    from proximity_sdk.models.app import App
    from proximity_sdk.models.operation import Operation

__all__ = ["RELOAD_TIMEOUT", "host_line", "proximity_operation_after"]

RELOAD_TIMEOUT = 15.0

log = logging.getLogger(__name__)

_GONE = frozenset({AppStatus.REMOVING, AppStatus.VANISHED})


@hookimpl
def proximity_operation_after(operation: Operation, app: App | None) -> None:
    """Add, update or remove the app's line in PROXIMITY_HOSTS_FILE (nothing when it is unset)."""
    try:
        config = HostsConfig.from_env()
    except ValidationError as exc:
        log.error("proximity-hosts is misconfigured, hosts file not updated: %s", exc)
        return
    if config.file is None:
        return
    app_id = app.id if app is not None else operation.app_id
    if app_id is None:
        return
    hosts = HostsFile(config.file)
    try:
        if app is None or app.status in _GONE:
            changed = hosts.remove(app_id)
        elif app.status == AppStatus.RUNNING and app.address:
            line = host_line(app, domain=config.domain)
            if line is None:
                return
            changed = hosts.set(app_id, line)
        else:
            return
    except (OSError, HostsFileError) as exc:
        log.error(
            "proximity-hosts could not update %s after %s of app %s: %s", config.file, operation.kind, app_id, exc
        )
        return
    if changed:
        log.info("proximity-hosts updated %s after %s of app %s", config.file, operation.kind, app_id)
        if config.reload:
            run_reload(config.reload)


def host_line(app: App, *, domain: str | None) -> str | None:
    """``<address> <hostname> [<hostname>.<domain>]`` for a running app, or None (logged) when its
    address or host name cannot be written to a hosts file."""
    address = parse_address(app.address or "")
    if address is None:
        log.warning("proximity-hosts skipped app %s: %r is not a host IP address", app.id, app.address)
        return None
    hostname = app.hostname.strip().lower()
    names = [hostname, f"{hostname}.{domain}"] if domain else [hostname]
    bad = [name for name in names if not is_valid_hostname(name)]
    if bad:
        log.warning("proximity-hosts skipped app %s: %r is not an RFC 1123 host name", app.id, bad[0])
        return None
    return " ".join([address, *names])


def run_reload(argv: tuple[str, ...]) -> None:
    """Run the reload command (no shell); a failure is logged, never raised: the file is written."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=RELOAD_TIMEOUT, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("proximity-hosts reload command %r failed: %s", " ".join(argv), exc)
        return
    if done.returncode != 0:
        log.warning(
            "proximity-hosts reload command %r exited with %d: %s",
            " ".join(argv),
            done.returncode,
            done.stderr.strip()[-500:],
        )
