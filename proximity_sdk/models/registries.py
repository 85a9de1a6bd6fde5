"""Container registries of a host: mirrors, insecure (plain HTTP) registries, CAs and credentials.

What dockerd in each app container of the host is told when the runtime is installed: written to
``/etc/docker/daemon.json`` (mirrors, insecure registries), ``/etc/docker/certs.d/<registry>/ca.crt``
(a registry's CA) and ``/root/.docker/config.json`` (credentials, mode 0600) through ``pct push``,
never on a command line. Credentials are secrets: kept encrypted in the store, shown as ``**********``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from proximity_sdk.models._html import HtmlRepr

__all__ = ["RegistryCredential", "RegistrySettings"]

# host[:port], as Docker names a registry (no scheme, no path)
_REGISTRY = re.compile(r"^(?=.{1,255}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
_MIRROR = re.compile(r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$")


def check_registry(value: str, what: str) -> str:
    value = value.strip()
    if not _REGISTRY.match(value):
        raise ValueError(
            f"{what} {value!r} is not a registry address: give host or host:port "
            "(registry.example.com, 10.0.3.1:5000), without scheme or path"
        )
    return value


class RegistryCredential(HtmlRepr, BaseModel):
    """A login for one registry: a user name and a password or token (a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str
    username: str = Field(min_length=1, max_length=255, pattern=r"^[^\s:]+$")
    password: SecretStr

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        return check_registry(value, "credential registry")

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value() or len(value.get_secret_value()) > 4096:
            raise ValueError("the password or token must have 1 to 4096 characters")
        return value


class RegistrySettings(HtmlRepr, BaseModel):
    """Registry settings of a host. Empty settings leave Docker's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # pull-through mirrors of Docker Hub, tried in order (``registry-mirrors``)
    mirrors: list[str] = Field(default_factory=list)
    # registries reached over plain HTTP or with an unverified certificate (``insecure-registries``)
    insecure: list[str] = Field(default_factory=list)
    # registry -> the PEM of the CA that signed its certificate
    cas: dict[str, str] = Field(default_factory=dict)
    credentials: list[RegistryCredential] = Field(default_factory=list)

    @field_validator("mirrors")
    @classmethod
    def _mirrors(cls, value: list[str]) -> list[str]:
        for mirror in value:
            if not _MIRROR.match(mirror.strip()):
                raise ValueError(f"mirror {mirror!r} is not a registry URL: give http(s)://host[:port]")
        return [m.strip() for m in value]

    @field_validator("insecure")
    @classmethod
    def _insecure(cls, value: list[str]) -> list[str]:
        return [check_registry(r, "insecure registry") for r in value]

    @field_validator("cas")
    @classmethod
    def _cas(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for registry, pem in value.items():
            check_registry(registry, "CA registry")
            if "-----BEGIN CERTIFICATE-----" not in pem or "-----END CERTIFICATE-----" not in pem:
                raise ValueError(f"the CA of {registry} is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
            out[registry] = pem.strip() + "\n"
        return out

    @model_validator(mode="after")
    def _one_login_per_registry(self) -> Self:
        seen = [c.registry for c in self.credentials]
        twice = sorted({r for r in seen if seen.count(r) > 1})
        if twice:
            raise ValueError(f"more than one credential for {', '.join(twice)}: give one login per registry")
        return self

    @property
    def empty(self) -> bool:
        return not (self.mirrors or self.insecure or self.cas or self.credentials)

    def daemon_json(self) -> str:
        """``/etc/docker/daemon.json``: mirrors and insecure registries (no secret in it)."""
        data: dict[str, Any] = {}
        if self.mirrors:
            data["registry-mirrors"] = self.mirrors
        if self.insecure:
            data["insecure-registries"] = self.insecure
        return json.dumps(data, indent=2) + "\n"

    def docker_config_json(self) -> str:
        """``/root/.docker/config.json``: one ``auths`` entry per credential (holds secrets: mode 0600)."""
        auths = {}
        for c in self.credentials:
            token = base64.b64encode(f"{c.username}:{c.password.get_secret_value()}".encode()).decode()
            auths[c.registry] = {"auth": token}
        return json.dumps({"auths": auths}, indent=2) + "\n"

    def stored(self) -> str:
        """The whole settings as JSON with the secrets in clear: only ever encrypted before storing."""
        data = self.model_dump(mode="json")
        data["credentials"] = [
            {**d, "password": c.password.get_secret_value()}
            for d, c in zip(data["credentials"], self.credentials, strict=True)
        ]
        return json.dumps(data)
