"""Configuration from environment variables (documented in README.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proximity_sdk.errors import ValidationError

__all__ = ["PortainerConfig"]


@dataclass(frozen=True)
class PortainerConfig:
    locations: tuple[str, ...]
    cache_dir: Path
    max_age: float
    timeout: float
    id_prefix: str
    allow_private: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PortainerConfig:
        env = os.environ if environ is None else environ
        locations = tuple(p for p in re.split(r"[,\s]+", env.get("PROXIMITY_PORTAINER_TEMPLATES", "")) if p)
        cache = env.get("PROXIMITY_PORTAINER_CACHE_DIR")
        if cache:
            cache_dir = Path(cache)
        else:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("proximity")) / "portainer"
        prefix = env.get("PROXIMITY_PORTAINER_ID_PREFIX", "portainer-")
        if prefix and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", prefix):
            raise ValidationError(
                f"PROXIMITY_PORTAINER_ID_PREFIX={prefix!r} is not usable in app ids",
                field="PROXIMITY_PORTAINER_ID_PREFIX",
                hint="Use letters, digits, '.', '_' or '-', starting with a letter or digit (at most 31)",
            )
        return cls(
            locations=locations,
            cache_dir=cache_dir,
            max_age=_seconds(env, "PROXIMITY_PORTAINER_MAX_AGE", 3600.0),
            timeout=_seconds(env, "PROXIMITY_PORTAINER_TIMEOUT", 10.0),
            id_prefix=prefix,
            allow_private=_flag(env, "PROXIMITY_PORTAINER_ALLOW_PRIVATE"),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValidationError(f"{name}={raw!r} is not a number of seconds", field=name, hint="Give e.g. 3600")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValidationError(f"{name}={raw!r} is not a yes/no value", field=name, hint="Give 1 or 0")
