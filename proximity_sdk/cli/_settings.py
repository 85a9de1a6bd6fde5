"""Where `proximity` connects: flags > PROXIMITY_* environment > config file > defaults.

The config file (TOML; ``--config``, else ``$PROXIMITY_CONFIG``, else
``$XDG_CONFIG_HOME/proximity/config.toml`` i.e. ``~/.config/proximity/config.toml``)::

    profile = "lab"                 # the profile used when none is asked for (optional)
    data_dir = "~/proximity-state"  # top-level keys apply to every profile

    [profiles.lab]
    agent = "agent.lan:7443"
    token_file = "~/.config/proximity/lab.token"
    ca_file = "lab-ca.pem"          # relative paths are relative to the config file

Keys: agent, token, token_file, ca_file, cert_file, key_file, data_dir, database_url, secret_key,
secret_key_file, local. An unknown key is an error (a typo must not silently fall back).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proximity_sdk.errors import ValidationError

__all__ = ["CliSettings", "default_config_path", "resolve"]

_STR_KEYS = (
    "agent",
    "token",
    "token_file",
    "ca_file",
    "cert_file",
    "key_file",
    "data_dir",
    "database_url",
    "secret_key",
    "secret_key_file",
)
_PATH_KEYS = frozenset({"token_file", "ca_file", "cert_file", "key_file", "data_dir", "secret_key_file"})
_SECRET_KEYS = frozenset({"token", "secret_key", "database_url"})
# setting -> environment variable
_ENV = {
    "agent": "PROXIMITY_AGENT",
    "token": "PROXIMITY_TOKEN",
    "ca_file": "PROXIMITY_CA_FILE",
    "cert_file": "PROXIMITY_CERT_FILE",
    "key_file": "PROXIMITY_KEY_FILE",
    "data_dir": "PROXIMITY_DATA_DIR",
    "database_url": "PROXIMITY_DATABASE_URL",
    "secret_key": "PROXIMITY_SECRET_KEY",
}
# setting -> attribute of the parsed arguments
_FLAGS = {
    "agent": "agent",
    "token_file": "token_file",
    "ca_file": "ca_file",
    "cert_file": "cert_file",
    "key_file": "key_file",
    "data_dir": "data_dir",
    "database_url": "database_url",
    "local": "local",
}


@dataclass(frozen=True)
class CliSettings:
    """The resolved connection settings; ``sources`` says where each came from (flag, env, config, default)."""

    config_path: Path | None = None
    profile: str | None = None
    agent: str | None = None
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    data_dir: str | None = None
    database_url: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    local: bool = False
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return bool(self.agent) and not self.local

    def public(self) -> dict[str, Any]:
        """What `proximity config show` prints: secrets replaced by "set"."""
        shown: dict[str, Any] = {
            "config_path": str(self.config_path) if self.config_path else None,
            "profile": self.profile,
            "mode": "agent" if self.remote else "local",
        }
        for key in (
            "agent",
            "token",
            "ca_file",
            "cert_file",
            "key_file",
            "data_dir",
            "database_url",
            "secret_key",
            "local",
        ):
            value = getattr(self, key)
            if key in _SECRET_KEYS and value:
                value = "(set)"
            shown[key] = {"value": value, "source": self.sources.get(key, "default")}
        return shown


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "proximity" / "config.toml"


def _load_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ValidationError(
            f"config file {str(path)!r} does not exist",
            field="config",
            hint="Create it, or point --config / PROXIMITY_CONFIG at an existing file",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"config file {str(path)!r} is not valid TOML: {exc}", field="config") from None
    except OSError as exc:
        raise ValidationError(f"config file {str(path)!r} cannot be read: {exc.strerror}", field="config") from None


def _section(data: Mapping[str, Any], where: str, path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _STR_KEYS:
            if not isinstance(value, str):
                raise ValidationError(f"{where}: {key} must be a string, not {type(value).__name__}", field=key)
            values[key] = str(path.parent / Path(value).expanduser()) if key in _PATH_KEYS else value
        elif key == "local":
            if not isinstance(value, bool):
                raise ValidationError(f"{where}: local must be true or false", field=key)
            values[key] = value
        else:
            known = ", ".join((*_STR_KEYS, "local"))
            raise ValidationError(f"{where}: unknown key {key!r}", field=key, hint=f"Known keys: {known}")
    return values


def _read_config(path: Path, profile: str | None, profile_source: str) -> tuple[dict[str, Any], str | None]:
    data = _load_toml(path)
    where = str(path)
    profiles = data.pop("profiles", {})
    if not isinstance(profiles, dict):
        raise ValidationError(f"{where}: `profiles` must be a table of tables ([profiles.NAME])", field="profiles")
    default_profile = data.pop("profile", None)
    if default_profile is not None and not isinstance(default_profile, str):
        raise ValidationError(f"{where}: profile must be a string", field="profile")
    values = _section(data, where, path)
    chosen = profile if profile is not None else default_profile
    if chosen is not None:
        section = profiles.get(chosen)
        if not isinstance(section, dict):
            names = ", ".join(sorted(profiles)) or "none"
            source = profile_source if profile is not None else f"`profile` in {where}"
            raise ValidationError(
                f"no profile {chosen!r} in {where} (asked for by {source})",
                field="profile",
                hint=f"Profiles there: {names}",
            )
        values.update(_section(section, f"{where} [profiles.{chosen}]", path))
    return values, chosen


def _read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ValidationError(f"{what} file {path!r} cannot be read: {exc.strerror}", field=what) from None
    if not text:
        raise ValidationError(f"{what} file {path!r} is empty", field=what)
    return text


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> CliSettings:
    """The settings for this run. Raises ValidationError (exit 2) for a missing or bad config file."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}

    config_arg = getattr(args, "config", None)
    if config_arg:
        config_path: Path | None = Path(config_arg).expanduser()
        explicit = True
    elif env.get("PROXIMITY_CONFIG"):
        config_path = Path(env["PROXIMITY_CONFIG"]).expanduser()
        explicit = True
    else:
        config_path = default_config_path()
        explicit = False
    profile = getattr(args, "profile", None)
    profile_source = "--profile"
    if profile is None and env.get("PROXIMITY_PROFILE"):
        profile, profile_source = env["PROXIMITY_PROFILE"], "PROXIMITY_PROFILE"

    from_config: dict[str, Any] = {}
    chosen = profile
    if config_path is not None and (explicit or config_path.exists()):
        from_config, chosen = _read_config(config_path, profile, profile_source)
    else:
        if profile is not None:
            raise ValidationError(
                f"profile {profile!r} asked for by {profile_source}, but there is no config file ({config_path})",
                field="profile",
                hint="Create the config file, or set PROXIMITY_CONFIG to yours",
            )
        config_path = None

    values: dict[str, Any] = {}
    for key, value in from_config.items():
        values[key] = value
        sources[key] = "config"
    # a token_file from the config is read only if no higher layer gives the token
    for key, var in _ENV.items():
        if env.get(var):
            values[key] = env[var]
            sources[key] = "env"
    for key, attr in _FLAGS.items():
        value = getattr(args, attr, None)
        if value is not None:
            values[key] = value
            sources[key] = "flag"

    token_file = values.pop("token_file", None)
    file_layer = sources.pop("token_file", None)
    if token_file and (
        file_layer == "flag" or "token" not in values or (sources.get("token") == "config" and file_layer == "config")
    ):
        values["token"] = _read_secret_file(token_file, "token")
        sources["token"] = f"{file_layer} (token_file)"
    secret_key_file = values.pop("secret_key_file", None)
    sources.pop("secret_key_file", None)
    if secret_key_file and "secret_key" not in values:
        values["secret_key"] = _read_secret_file(secret_key_file, "secret_key")
        sources["secret_key"] = "config (secret_key_file)"  # noqa: S105 (a source label, not a secret)

    return CliSettings(
        config_path=config_path, profile=chosen, sources=sources, local=bool(values.pop("local", False)), **values
    )
