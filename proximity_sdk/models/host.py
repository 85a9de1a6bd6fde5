"""Proxmox hosts (an API endpoint: one node or a whole cluster) and their nodes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from proximity_sdk.models._html import HtmlRepr
from proximity_sdk.models.ssh import SshAccess

__all__ = ["Host", "HostAdd", "HostAuth", "HostCredentials", "HostUpdate", "Node"]

HostAuth = Literal["token", "password"]

HOST_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$"
_TOKEN_ID = re.compile(r"^[^\s@!:]+@[A-Za-z][A-Za-z0-9._-]*![A-Za-z][A-Za-z0-9._-]*$")
_USER = re.compile(r"^[^\s@!:]+@[A-Za-z][A-Za-z0-9._-]*$")
_PEM_CERT = "-----BEGIN CERTIFICATE-----"


def normalize_url(value: str) -> str:
    """``https://pve1:8006`` form: scheme and authority only (a trailing ``/api2/json`` is dropped)."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError(f"{value!r} is not a Proxmox URL; give it as https://<host>:8006")
    path = parts.path.rstrip("/")
    if path not in {"", "/api2/json"}:
        raise ValueError(f"{value!r} has a path {parts.path!r}; give only https://<host>:<port>")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} must not carry a query, fragment or credentials")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def check_ca_pem(value: str) -> str:
    """The CA certificate(s) must parse as PEM X.509, so a wrong file is caught when added."""
    from cryptography import x509

    if _PEM_CERT not in value:
        raise ValueError("ca must be PEM certificate text (-----BEGIN CERTIFICATE-----), not a path")
    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError as exc:
        raise ValueError(f"ca is not a valid PEM certificate: {exc}") from None
    return value


class _Credentials(HtmlRepr, BaseModel):
    """Shared validation of the credential fields of add/update requests."""

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_url(value)

    @field_validator("token_id", check_fields=False)
    @classmethod
    def _token_id(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN_ID.match(value):
            raise ValueError(f"token_id {value!r} must look like user@realm!tokenname")
        return value

    @field_validator("user", check_fields=False)
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not _USER.match(value):
            raise ValueError(f"user {value!r} must look like user@realm (e.g. root@pam)")
        return value

    @field_validator("ca_pem", check_fields=False)
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        return None if value is None else check_ca_pem(value)


class HostAdd(_Credentials):
    """Request: register a host. Give either ``token_id`` + ``token_secret`` (preferred) or
    ``user`` + ``password``. ``ca_pem`` is the CA certificate text (the SDK reads ``ca_file``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=HOST_NAME_PATTERN)
    url: str
    token_id: str | None = None
    token_secret: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    verify_tls: bool = True
    ca_pem: str | None = None
    ssh: SshAccess | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        token = self.token_id is not None or self.token_secret is not None
        password = self.user is not None or self.password is not None
        if token and password:
            raise ValueError("give either token_id/token_secret or user/password, not both")
        if token and (self.token_id is None or not self.token_secret):
            raise ValueError("token auth needs both token_id and token_secret")
        if password and (self.user is None or not self.password):
            raise ValueError("password auth needs both user and password")
        if not token and not password:
            raise ValueError("credentials missing: give token_id + token_secret (or user + password)")
        return self

    @property
    def auth(self) -> HostAuth:
        return "token" if self.token_id is not None else "password"


class HostUpdate(_Credentials):
    """Request: change a host. Only the fields given change; switching auth kind needs the full
    pair (token_id + token_secret, or user + password). ``ca_pem=None`` given explicitly clears it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=HOST_NAME_PATTERN)
    url: str | None = None
    token_id: str | None = None
    token_secret: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    verify_tls: bool | None = None
    ca_pem: str | None = None
    ssh: SshAccess | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        token = self.token_id is not None or self.token_secret is not None
        password = self.user is not None or self.password is not None
        if token and password:
            raise ValueError("give either token_id/token_secret or user/password, not both")
        return self


class Host(HtmlRepr, BaseModel):
    """A registered Proxmox host. Never carries its secret: see ``store.hosts.credentials``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    url: str
    auth: HostAuth
    token_id: str | None = None
    user: str | None = None
    verify_tls: bool = True
    ca_pem: str | None = None
    ssh: SshAccess | None = None
    is_default: bool = False
    created_at: datetime
    updated_at: datetime


class HostCredentials(HtmlRepr, BaseModel):
    """What the Proxmox client needs to connect. Secrets stay ``SecretStr``: call
    ``get_secret_value()`` at the moment of use, never log them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    name: str
    url: str
    auth: HostAuth
    token_id: str | None = None
    token_secret: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    verify_tls: bool = True
    ca_pem: str | None = None
    ssh: SshAccess | None = None


class Node(HtmlRepr, BaseModel):
    """A node of a host as last synced: status and capacity (bytes)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    name: str
    status: str = "unknown"
    cpus: int | None = None
    maxmem: int | None = None
    mem: int | None = None
    maxdisk: int | None = None
    disk: int | None = None
    pve_version: str | None = None
    last_seen_at: datetime | None = None

    @property
    def online(self) -> bool:
        return self.status == "online"
