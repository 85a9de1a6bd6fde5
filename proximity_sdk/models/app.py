"""An app: one catalog entry running in one LXC container, tracked for its whole life."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from proximity_sdk.errors import ValidationError
from proximity_sdk.models._html import HtmlRepr
from proximity_sdk.models.resources import Resources

__all__ = ["ACTIVE_APP_STATUSES", "App", "AppCredentials", "AppStatus", "DeployStrategy", "Port", "parse_app_status"]

#: How a catalog app is deployed: ``oci`` as a native OCI application container (PVE >= 9.1, single
#: image, no Docker and no node shell), ``compose`` with Docker compose inside an OS container, ``auto``
#: OCI where the app and the node allow it, else compose (docs/oci.md).
DeployStrategy = Literal["auto", "oci", "compose"]


class AppStatus(StrEnum):
    """Where an app stands. Start, stop and restart show as operation progress, not as states."""

    DEPLOYING = "deploying"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    CLONING = "cloning"
    ADOPTING = "adopting"
    MIGRATING = "migrating"
    RESTORING = "restoring"
    UPDATING = "updating"
    REMOVING = "removing"
    VANISHED = "vanished"


def parse_app_status(status: AppStatus | str | None) -> AppStatus | None:
    """A status filter as given to ``px.apps.list(status=...)`` (None: any), refused when unknown."""
    if status is None:
        return None
    try:
        return AppStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in AppStatus)
        raise ValidationError(f"unknown status {status!r}; one of {known}", field="status") from None


# States in which an operation is changing the app; the janitor watches apps stuck in them.
ACTIVE_APP_STATUSES = frozenset(
    {
        AppStatus.DEPLOYING,
        AppStatus.CLONING,
        AppStatus.ADOPTING,
        AppStatus.MIGRATING,
        AppStatus.RESTORING,
        AppStatus.UPDATING,
        AppStatus.REMOVING,
    }
)


class Port(HtmlRepr, BaseModel):
    """A service's own port on the container's address (nothing is published on the Proxmox host)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service: str = Field(min_length=1, max_length=63)
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"


class App(HtmlRepr, BaseModel):
    """An app as recorded. Secrets (root password, generated values) are never part of it:
    ``px.apps.credentials(app_id)`` returns them to the owner or an admin."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    hostname: str
    status: AppStatus
    host_id: str
    catalog_id: str | None = None
    catalog_version: str | None = None
    owner_id: str | None = None
    node: str | None = None
    vmid: int | None = None
    address: str | None = None
    url: str | None = None
    resources: Resources = Field(default_factory=Resources)
    ports: tuple[Port, ...] = ()
    config: dict[str, Any] = Field(default_factory=dict)
    adopted: bool = False
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime


class AppCredentials(HtmlRepr, BaseModel):
    """An app's secrets: the container's root password and the generated values of its ``.env``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    app_id: str
    root_password: SecretStr | None
    secrets: dict[str, SecretStr]
