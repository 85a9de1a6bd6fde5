"""Catalog data types: an app entry (`CatalogApp`), its declared secrets, and what loading reports.

The entry format is the original Proximity format (``id, name, version, description, category,
icon, docker_compose`` plus optional ``tags, min_memory, min_cpu, min_disk, ports, volumes,
environment, author, website``) extended with what a real deploy needs: ``main_service``,
``main_port``, ``health_path``, ``secrets``, ``os_template``. Unknown keys are ignored, so entries
written for newer versions still load. docs/catalog.md describes the format.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from proximity_sdk.models._duration import grace_seconds
from proximity_sdk.models._html import HtmlRepr

__all__ = [
    "APP_ID_PATTERN",
    "ENV_NAME_PATTERN",
    "CatalogApp",
    "CatalogProblem",
    "CatalogShadowing",
    "CatalogStats",
    "SecretKind",
    "SecretSpec",
]

APP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# compose's own rule for service names
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OS_TEMPLATE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,254}$")

# images that are a backing service, never the app a user opens in a browser
_BACKING_IMAGES = (
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "valkey",
    "mongo",
    "memcached",
    "rabbitmq",
    "elasticsearch",
    "opensearch",
    "clickhouse",
    "couchdb",
    "minio",
    "influxdb",
    "pgvector",
)

SecretKind = Literal["password", "hex", "base64", "app-key", "sha256"]


class SecretSpec(HtmlRepr, BaseModel):
    """A secret generated for each deployment and written to the app's ``.env``.

    ``kind``: ``password`` (letters and digits, ``length`` characters), ``hex`` (``length`` hex
    digits), ``base64`` (``length`` random bytes, base64), ``app-key`` (Laravel style
    ``base64:`` + 32 random bytes), ``sha256`` (hex SHA-256 of the secret named in ``of``, for
    apps that take a password hash).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ENV_NAME_PATTERN, max_length=128)
    kind: SecretKind = "password"
    length: int = Field(default=32, ge=8, le=256)
    of: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    description: str | None = None

    @model_validator(mode="after")
    def _of_only_for_hashes(self) -> SecretSpec:
        if self.kind == "sha256" and not self.of:
            raise ValueError("a sha256 secret needs `of`: the name of the secret it hashes")
        if self.kind != "sha256" and self.of:
            raise ValueError("`of` is only meaningful for kind sha256")
        return self


class CatalogApp(HtmlRepr, BaseModel):
    """One app of the catalog. ``main_service`` and ``main_port`` are filled in when absent.

    Derivation: the main service is the first service that publishes ports, else the service
    named like the app, else the first service whose image is not a backing service (database,
    cache, queue), else the first service. The main port is the first of ``ports``, else the first
    published (host side) port of the main service, else ``None``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=APP_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    description: str
    category: str = Field(min_length=1, max_length=100)
    icon: str | None = None
    docker_compose: dict[str, Any]
    tags: list[str] = Field(default_factory=list)
    min_memory: int = Field(default=512, ge=16, description="MB")
    min_cpu: int = Field(default=1, ge=1)
    min_disk: int | None = Field(default=None, ge=1, description="GB")
    ports: list[int] = Field(default_factory=list)
    volumes: list[Any] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    author: str | None = None
    website: str | None = None
    # our extensions
    main_service: str | None = None
    main_port: int | None = Field(default=None, ge=1, le=65535)
    health_path: str | None = Field(default=None, pattern=r"^/[^\s]*$", max_length=500)
    secrets: list[SecretSpec] = Field(default_factory=list)
    os_template: str | None = None

    @field_validator("ports")
    @classmethod
    def _ports_in_range(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1-65535")
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secret_names_as_specs(cls, value: Any) -> Any:
        # a bare name is shorthand for a default password secret
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("os_template")
    @classmethod
    def _os_template_shape(cls, value: str | None) -> str | None:
        if value is not None and (not _OS_TEMPLATE.match(value) or ".." in value):
            raise ValueError("expected a template name such as debian-12-standard or a storage:vztmpl/... volume")
        return value

    @field_validator("docker_compose")
    @classmethod
    def _compose_has_services(cls, value: dict[str, Any]) -> dict[str, Any]:
        services = value.get("services")
        if not isinstance(services, dict) or not services:
            raise ValueError("`services` must be a non-empty mapping of service name to definition")
        for name, service in services.items():
            if not isinstance(name, str) or not _SERVICE_NAME.match(name):
                raise ValueError(f"service name {name!r} is not valid (letters, digits, '_', '.', '-')")
            if not isinstance(service, dict):
                raise ValueError(f"service {name!r} must be a mapping")
            image = service.get("image")
            if image is None and "build" not in service:
                raise ValueError(f"service {name!r} has neither `image` nor `build`")
            if image is not None and (not isinstance(image, str) or not image.strip()):
                raise ValueError(f"service {name!r}: `image` must be a non-empty string")
            if "stop_grace_period" in service:
                try:  # how long a stop waits before it kills: never guessed (docs/oci.md)
                    grace_seconds(service["stop_grace_period"])
                except ValueError as exc:
                    raise ValueError(f"service {name!r}: {exc}") from None
        return value

    @field_validator("main_service")
    @classmethod
    def _main_service_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        compose = info.data.get("docker_compose")
        if value is not None and compose is not None and value not in compose["services"]:
            raise ValueError(f"{value!r} is not one of the services: {', '.join(compose['services'])}")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets_consistent(cls, value: list[SecretSpec]) -> list[SecretSpec]:
        names = [spec.name for spec in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"declared twice: {', '.join(duplicates)}")
        for spec in value:
            if spec.of is not None and spec.of not in names:
                raise ValueError(f"{spec.name} hashes {spec.of}, which is not declared")
        return value

    @model_validator(mode="after")
    def _derive_main(self) -> CatalogApp:
        services: dict[str, Any] = self.docker_compose["services"]
        main = self.main_service or _derive_main_service(self.id, services)
        port = self.main_port
        if port is None:
            port = self.ports[0] if self.ports else _first_published_port(services.get(main))
        # frozen model: the derived values are set once, during validation
        object.__setattr__(self, "main_service", main)
        object.__setattr__(self, "main_port", port)
        return self

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        """The compose services (name -> definition); do not mutate."""
        services: dict[str, dict[str, Any]] = self.docker_compose["services"]
        return services

    @property
    def images(self) -> list[str]:
        """Every image the app runs, in service order."""
        return [s["image"] for s in self.services.values() if isinstance(s.get("image"), str)]


def _derive_main_service(app_id: str, services: dict[str, Any]) -> str:
    for name, service in services.items():
        if service.get("ports"):
            return name
    lowered = app_id.lower()
    for name in services:
        if name.lower() == lowered:
            return name
    for name, service in services.items():
        image = str(service.get("image", "")).rsplit("/", 1)[-1].split(":", 1)[0].lower()
        if not image.startswith(_BACKING_IMAGES):
            return name
    return next(iter(services))


def _first_published_port(service: Any) -> int | None:
    """The host-side port of the first ``ports`` item: ``"8080:80/tcp"`` -> 8080, ``"80"`` -> 80."""
    if not isinstance(service, dict):
        return None
    for item in service.get("ports") or ():
        if isinstance(item, int):
            return item
        if isinstance(item, dict):  # long syntax
            published = item.get("published", item.get("target"))
            if published is not None and str(published).split("-")[0].isdigit():
                return int(str(published).split("-")[0])
            continue
        spec = str(item).split("/", 1)[0]
        parts = spec.split(":")
        host = parts[-2] if len(parts) >= 2 else parts[0]  # "ip:host:container" or "host:container"
        host = host.split("-", 1)[0]
        if host.isdigit():
            return int(host)
    return None


class CatalogProblem(HtmlRepr, BaseModel):
    """An entry that could not be loaded: where it came from, which field, and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str
    origin: str
    app_id: str | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = f"{self.origin}: {self.field}" if self.field else self.origin
        return f"{where}: {self.message}"


class CatalogShadowing(HtmlRepr, BaseModel):
    """Two sources define the same id; the later source wins (see docs/catalog.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_id: str
    kept_origin: str
    kept_source: str
    shadowed_origin: str
    shadowed_source: str


class CatalogStats(HtmlRepr, BaseModel):
    """Counts over the loaded catalog."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    total_apps: int
    total_categories: int
    by_category: dict[str, int]
    by_source: dict[str, int]
    problems: int
    shadowed: int
