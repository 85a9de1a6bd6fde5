"""The agent's settings: a TOML or JSON file, overridden by ``PROXIMITY_AGENT_*`` environment variables.

``AgentSettings.load(path)`` reads the file (``path``, else ``$PROXIMITY_AGENT_CONFIG``, else
none), then applies every ``PROXIMITY_AGENT_<FIELD>`` variable (the environment wins), then
validates the whole. An empty variable counts as unset; ``null`` sets a nullable field to None
(``PROXIMITY_AGENT_METRICS_PORT=null``: no metrics endpoint). A bad value fails at once with a
``ValidationError`` naming the field and where the value came from; an unknown key or variable
fails too (a typo must not be ignored).

These are the agent process's own settings (where its database is, what it listens on, how
often its jobs run); the settings of Proximity itself (network, templates, ...) live in the
database (``px.settings``).
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic import ValidationError as PydanticValidationError

from proximity_sdk.errors import ValidationError

__all__ = ["CONFIG_ENV", "ENV_PREFIX", "AgentSettings"]

ENV_PREFIX = "PROXIMITY_AGENT_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
# fields whose environment value is a list: JSON (``["a","b"]``) or os.pathsep-separated
_LIST_FIELDS = frozenset({"catalog_paths", "catalog_trusted_sources"})


class AgentSettings(BaseModel):
    """Settings of one agent process. Every field can come from the file or ``PROXIMITY_AGENT_<FIELD>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # state ------------------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="None: SQLite in data_dir; postgresql+psycopg://... for several agents"
    )
    secret_key: SecretStr | None = Field(default=None, description="a Fernet key for secrets at rest")
    secret_key_file: Path | None = Field(default=None, description="a file (mode 0600) holding the Fernet key")
    data_dir: Path | None = Field(default=None, description="SQLite file and key file; default: user data dir")
    catalog_paths: list[Path] = Field(default_factory=list)
    catalog_trusted_sources: list[str] = Field(
        default_factory=list, description="catalog sources whose compose files skip the compose policy"
    )
    entry_points: bool = Field(default=True, description="load plugins installed under the 'proximity' group")
    # serving ----------------------------------------------------------------------------------------
    bind_address: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=50051, ge=0, le=65535, description="0: any free port")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = Field(default=None, description="require client certificates signed by it")
    allow_plaintext: bool = Field(
        default=False, description="serve without TLS on an address other than loopback (refused otherwise)"
    )
    rpc_long_workers: int = Field(default=16, ge=1, le=512, description="threads for long calls (logs, pulls)")
    rpc_long_calls_per_user: int = Field(default=4, ge=1, le=512, description="long calls one user may hold at once")
    backup_schedules_per_user: int = Field(
        default=20, ge=0, le=100_000, description="backup schedules a member may have"
    )
    metrics_address: str = Field(default="127.0.0.1", min_length=1)
    metrics_port: int | None = Field(default=9464, ge=0, le=65535, description="None: no metrics endpoint")
    # periodic jobs (seconds; 0 turns a job off) -------------------------------------------------------
    reconcile_interval_seconds: float = Field(default=60.0, ge=0)
    janitor_interval_seconds: float = Field(default=300.0, ge=0)
    node_sync_interval_seconds: float = Field(default=300.0, ge=0)
    backup_schedules_interval_seconds: float = Field(default=60.0, ge=0)
    # how often apps in an open update window are checked (each window acts once per app)
    app_updates_interval_seconds: float = Field(default=300.0, ge=0)
    # every replica (leader or not) takes over orphaned operations this often; None: the lease
    recover_interval_seconds: float | None = Field(default=None, gt=0)
    leader_check_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    # operations -------------------------------------------------------------------------------------
    lease_seconds: float | None = Field(default=None, ge=1, le=3600, description="None: from px.settings")
    node_slots: int = Field(default=4, ge=1, le=64)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # logs -------------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.secret_key is not None and self.secret_key_file is not None:
            raise ValueError("give secret_key or secret_key_file, not both")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs TLS: give tls_cert_file and tls_key_file too")
        if self.metrics_port is not None and self.metrics_port != 0 and self.metrics_port == self.port:
            raise ValueError(f"metrics_port and port are both {self.port}")
        return self

    # loading ----------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Settings from ``path`` (TOML or JSON; default ``$PROXIMITY_AGENT_CONFIG``, or no file),
        then the ``PROXIMITY_AGENT_*`` variables of ``env`` (default ``os.environ``)."""
        environ = os.environ if env is None else env
        if path is None and environ.get(CONFIG_ENV):
            path = environ[CONFIG_ENV]
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        if path is not None:
            values = _read_file(Path(path))
            origins = dict.fromkeys(values, f"file {path}")
        for name, raw in _env_values(environ).items():
            values[name] = raw
            origins[name] = f"${ENV_PREFIX}{name.upper()}"
        return cls.checked(values, origins=origins)

    @classmethod
    def checked(cls, values: Mapping[str, Any], *, origins: Mapping[str, str] | None = None) -> AgentSettings:
        """Validate ``values``; a ValidationError names the first bad field and where it came from."""
        try:
            return cls.model_validate(dict(values))
        except PydanticValidationError as exc:
            problems = []
            first: str | None = None
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or None
                first = first or field
                where = (origins or {}).get(str(error["loc"][0]) if error["loc"] else "", "")
                label = f"{field} (from {where})" if field and where else field or "settings"
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = "unknown setting"
                problems.append(f"{label}: {message}")
            raise ValidationError(
                "agent settings are invalid: " + "; ".join(problems),
                field=first,
                hint="Fix the named settings in the file or the PROXIMITY_AGENT_* variables; "
                "see proximity_agent/settings.py for every setting",
            ) from None

    # derived values ---------------------------------------------------------------------------------

    def resolved_secret_key(self) -> str | None:
        """The Fernet key from ``secret_key`` or ``secret_key_file`` (None: the SDK's own default)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.secret_key_file is None:
            return None
        path = self.secret_key_file.expanduser()
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except OSError as exc:
            raise ValidationError(
                f"secret_key_file {path} cannot be read: {exc.strerror}", field="secret_key_file"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValidationError(
                f"secret_key_file {path} is readable by others (mode {stat.S_IMODE(mode):o})",
                field="secret_key_file",
                hint=f"chmod 600 {path}",
            )
        if not text:
            raise ValidationError(f"secret_key_file {path} is empty", field="secret_key_file")
        return text

    def effective_recover_interval(self, lease_seconds: float) -> float:
        return self.recover_interval_seconds or max(1.0, lease_seconds)

    def public(self) -> dict[str, Any]:
        """The settings as shown in logs: no secret, no database password."""
        shown = self.model_dump(mode="json", exclude={"secret_key"})
        shown["secret_key"] = "<set>" if self.secret_key is not None else None
        if self.database_url:
            from sqlalchemy.engine import make_url

            try:
                shown["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
            except Exception:  # an unparsable URL is refused later, by the store; never show it raw
                shown["database_url"] = "<unparsable>"
        return shown


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.expanduser().read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"agent settings file {path} cannot be read: {exc.strerror}",
            field="config",
            hint=f"Give an existing TOML or JSON file (--config or ${CONFIG_ENV})",
        ) from None
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(raw.decode())
        elif path.suffix == ".json":
            data = json.loads(raw)
        else:
            raise ValidationError(f"agent settings file {path} must end in .toml or .json", field="config")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"agent settings file {path} is not valid {path.suffix[1:].upper()}: {exc}", field="config"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(f"agent settings file {path} must hold a table/object of settings", field="config")
    return data


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        if name not in AgentSettings.model_fields:
            raise ValidationError(
                f"${key} is not an agent setting",
                field=name,
                hint="Remove it, or fix its name: see proximity_agent/settings.py",
            )
        value: Any = raw
        if raw.strip() == "":
            continue  # an empty variable is "not set": the file's value or the default
        if raw.strip().lower() == "null":
            value = None  # e.g. PROXIMITY_AGENT_METRICS_PORT=null turns the metrics endpoint off
        elif name in _LIST_FIELDS:
            value = _env_list(key, raw)
        values[name] = value
    return values


def _env_list(key: str, raw: str) -> list[Any]:
    if not raw.lstrip().startswith("["):
        return [p for p in raw.split(os.pathsep) if p]
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"${key} is not a JSON list: {exc}",
            field=key.removeprefix(ENV_PREFIX).lower(),
            hint=f"Use a JSON list or {os.pathsep!r}-separated paths",
        ) from None
    if not isinstance(parsed, list):
        raise ValidationError(f"${key} must be a list", field=key.removeprefix(ENV_PREFIX).lower())
    return parsed
