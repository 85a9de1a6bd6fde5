"""The options of the two kinds, checked when the target is added (and again when it is opened).

Loading the plugin imports this module (through ``plugin.py``), and every catalog command loads
the plugins: it imports pydantic (already loaded by the SDK) and nothing heavier.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from proximity_sdk.errors import ValidationError

__all__ = ["DirectoryOptions", "SftpOptions", "dump_options", "parse_options"]

_STORAGE = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class _Common(BaseModel):
    # defer_build: the validators are built when options are first checked, not when the plugin
    # is loaded (by every catalog command)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: the node storage vzdump writes to before the copy (a file-based one: dir, NFS, CIFS)
    staging_storage: str = Field(default="local", pattern=_STORAGE)
    #: keep the archive on the node as well (restores from it are then local and fast)
    keep_on_node: bool = False


class SftpOptions(_Common):
    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    path: str = Field(min_length=1, max_length=1024)
    key_file: str | None = None
    password: SecretStr | None = None
    #: an OpenSSH known_hosts file that must list the server: unknown host keys are refused
    known_hosts: str
    timeout: float = Field(default=30.0, gt=0, le=600)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value:
            raise ValueError("must be an absolute path on the SFTP server")
        return posixpath.normpath(value)

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SftpOptions:
        if (self.key_file is None) == (self.password is None):
            raise ValueError("give exactly one of key_file and password")
        return self


class DirectoryOptions(_Common):
    #: a directory on the machine running Proximity (a mounted disk, NAS share, ...)
    path: str = Field(min_length=1, max_length=1024)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value:
            raise ValueError("must be an absolute path")
        return posixpath.normpath(value)


def parse_options(model: type[_Common], kind: str, options: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(options))
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = (
                "unknown option" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
            )
            problems.append(f"{where}: {message}" if where else message)
        first = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise ValidationError(
            f"invalid options for a {kind} target: " + "; ".join(problems),
            field=f"options.{first}" if first else "options",
        ) from None


def dump_options(options: BaseModel) -> dict[str, Any]:
    data = options.model_dump(mode="json")
    for name, value in options:
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()  # stored encrypted by Proximity
    return data
