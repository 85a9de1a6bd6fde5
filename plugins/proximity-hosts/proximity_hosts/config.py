"""Configuration from environment variables (documented in README.md), read on every notification."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proximity_hosts.names import is_valid_hostname
from proximity_sdk.errors import ValidationError

__all__ = ["HostsConfig"]


@dataclass(frozen=True)
class HostsConfig:
    """``file`` is None when the plugin is installed but not configured (it then does nothing)."""

    file: Path | None
    domain: str | None = None
    reload: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostsConfig:
        env = os.environ if environ is None else environ
        raw_file = env.get("PROXIMITY_HOSTS_FILE", "").strip()
        if not raw_file:
            return cls(file=None)
        file = Path(raw_file).expanduser()
        if file.is_dir():
            raise ValidationError(
                f"PROXIMITY_HOSTS_FILE={raw_file!r} is a directory",
                field="PROXIMITY_HOSTS_FILE",
                hint="Give the path of the hosts file itself, e.g. /etc/dnsmasq.hosts/proximity",
            )
        domain = env.get("PROXIMITY_HOSTS_DOMAIN", "").strip().strip(".").lower() or None
        if domain is not None and not is_valid_hostname(domain):
            raise ValidationError(
                f"PROXIMITY_HOSTS_DOMAIN={domain!r} is not a valid domain name",
                field="PROXIMITY_HOSTS_DOMAIN",
                hint="Use dot-separated labels of letters, digits and inner hyphens, e.g. lan or home.arpa",
            )
        raw_reload = env.get("PROXIMITY_HOSTS_RELOAD", "")
        try:
            reload = tuple(shlex.split(raw_reload))
        except ValueError as exc:  # unbalanced quotes
            raise ValidationError(
                f"PROXIMITY_HOSTS_RELOAD={raw_reload!r} cannot be split into arguments: {exc}",
                field="PROXIMITY_HOSTS_RELOAD",
                hint="Quote as in a POSIX shell, e.g. pkill -HUP dnsmasq (it is run without a shell)",
            ) from exc
        return cls(file=file, domain=domain, reload=reload)
