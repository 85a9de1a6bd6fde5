"""``apps.proto``: apps, their updates, update windows, credentials and discovered containers
(answers, both directions), and the parts of AppService's requests that need converting: the
status filter, the deploy strategy, the stop's kill mode, the environment.

What the agent reads from a request it cannot express is refused with a ``ValidationError``
naming the field. Credentials are the one answer here that carries secrets (GetAppCredentials,
by design).
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

from proximity_sdk._pb.proximity.v1 import apps_pb2
from proximity_sdk._wire._base import (
    enum_from_pb,
    enum_to_pb,
    json_from_pb,
    json_to_pb,
    known_enum_from_pb,
    optional_from_pb,
    required_timestamp_from_pb,
    timestamp_to_pb,
)
from proximity_sdk._wire.common import resources_from_pb, resources_to_pb
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy, Port
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.update import WEEKDAYS, AppUpdate, ImageUpdate, UpdateWindow

__all__ = [
    "app_from_pb",
    "app_status_filter_from_pb",
    "app_status_filter_to_pb",
    "app_status_from_pb",
    "app_status_to_pb",
    "app_to_pb",
    "app_update_from_pb",
    "app_update_to_pb",
    "credentials_from_pb",
    "credentials_to_pb",
    "discovered_from_pb",
    "discovered_to_pb",
    "environment_from_pb",
    "environment_to_pb",
    "stop_force_from_pb",
    "stop_force_to_pb",
    "strategy_from_pb",
    "strategy_to_pb",
    "update_window_from_pb",
    "update_window_to_pb",
]


# -- status --------------------------------------------------------------------------------------

_APP_STATUSES = [s.value for s in AppStatus]


# looked up once: every app in every answer carries a status and its ports' protocols
_APP_STATUS_NUMBERS: dict[AppStatus, apps_pb2.AppStatus.ValueType] = {
    s: enum_to_pb("APP_STATUS_", apps_pb2.AppStatus, s.value) for s in AppStatus
}
_PORT_PROTOCOL_NUMBERS: dict[str, apps_pb2.PortProtocol.ValueType] = {
    p: enum_to_pb("PORT_PROTOCOL_", apps_pb2.PortProtocol, p) for p in ("tcp", "udp")
}


def app_status_to_pb(status: AppStatus) -> apps_pb2.AppStatus.ValueType:
    return _APP_STATUS_NUMBERS[status]


def app_status_from_pb(number: int) -> AppStatus:
    """An app's status in an answer; one this client does not know reads as ``error``."""
    return AppStatus(
        known_enum_from_pb("APP_STATUS_", apps_pb2.AppStatus, number, known=_APP_STATUSES, default="error")
    )


def app_status_filter_to_pb(status: AppStatus | None) -> apps_pb2.AppStatus.ValueType:
    """ListApps' status filter: None (any status) is unspecified."""
    return apps_pb2.APP_STATUS_UNSPECIFIED if status is None else app_status_to_pb(status)


def app_status_filter_from_pb(number: int) -> AppStatus | None:
    """ListApps' status filter: unspecified is None (any status); an unknown number is refused."""
    value = enum_from_pb("APP_STATUS_", apps_pb2.AppStatus, number)
    return AppStatus(value) if value is not None else None


# -- apps, updates, windows ----------------------------------------------------------------------


def app_to_pb(app: App, *, config_json: str | None = None) -> apps_pb2.App:
    """The App's message. ``config_json``: ``app.config`` as JSON text already (the text the
    store read it from: ``AppsRepository.stored_config``), else it is encoded here."""
    return apps_pb2.App(
        id=app.id,
        hostname=app.hostname,
        status=app_status_to_pb(app.status),
        host_id=app.host_id,
        catalog_id=app.catalog_id,
        catalog_version=app.catalog_version,
        owner_id=app.owner_id,
        node=app.node,
        vmid=app.vmid,
        address=app.address,
        url=app.url,
        resources=resources_to_pb(app.resources),
        ports=[
            apps_pb2.Port(service=p.service, port=p.port, protocol=_PORT_PROTOCOL_NUMBERS[p.protocol])
            for p in app.ports
        ],
        config_json=json_to_pb(app.config) if config_json is None else config_json,
        adopted=app.adopted,
        created_at=timestamp_to_pb(app.created_at),
        updated_at=timestamp_to_pb(app.updated_at),
        status_changed_at=timestamp_to_pb(app.status_changed_at),
    )


def app_from_pb(m: apps_pb2.App) -> App:
    ports = tuple(
        Port(
            service=p.service,
            port=p.port,
            protocol=known_enum_from_pb(
                "PORT_PROTOCOL_", apps_pb2.PortProtocol, p.protocol, known=("tcp", "udp"), default="tcp"
            ),
        )
        for p in m.ports
    )
    return App(
        id=m.id,
        hostname=m.hostname,
        status=app_status_from_pb(m.status),
        host_id=m.host_id,
        catalog_id=optional_from_pb(m, "catalog_id"),
        catalog_version=optional_from_pb(m, "catalog_version"),
        owner_id=optional_from_pb(m, "owner_id"),
        node=optional_from_pb(m, "node"),
        vmid=optional_from_pb(m, "vmid"),
        address=optional_from_pb(m, "address"),
        url=optional_from_pb(m, "url"),
        resources=resources_from_pb(m.resources),
        ports=ports,
        config=json_from_pb(m.config_json, default={}),
        adopted=m.adopted,
        created_at=required_timestamp_from_pb(m, "created_at"),
        updated_at=required_timestamp_from_pb(m, "updated_at"),
        status_changed_at=required_timestamp_from_pb(m, "status_changed_at"),
    )


def app_update_to_pb(update: AppUpdate) -> apps_pb2.AppUpdate:
    return apps_pb2.AppUpdate(
        app_id=update.app_id,
        hostname=update.hostname,
        catalog_id=update.catalog_id,
        current_version=update.current_version,
        available_version=update.available_version,
        images=[
            apps_pb2.ImageUpdate(image=i.image, current_digest=i.current_digest, available_digest=i.available_digest)
            for i in update.images
        ],
        checked_at=timestamp_to_pb(update.checked_at),
    )


def app_update_from_pb(m: apps_pb2.AppUpdate) -> AppUpdate:
    images = tuple(
        ImageUpdate(
            image=i.image, current_digest=optional_from_pb(i, "current_digest"), available_digest=i.available_digest
        )
        for i in m.images
    )
    return AppUpdate(
        app_id=m.app_id,
        hostname=m.hostname,
        catalog_id=optional_from_pb(m, "catalog_id"),
        current_version=optional_from_pb(m, "current_version"),
        available_version=optional_from_pb(m, "available_version"),
        images=images,
        checked_at=required_timestamp_from_pb(m, "checked_at"),
    )


def update_window_to_pb(window: UpdateWindow) -> apps_pb2.UpdateWindow:
    return apps_pb2.UpdateWindow(days=list(window.days), start=window.start, minutes=window.minutes)


def update_window_from_pb(message: apps_pb2.UpdateWindow) -> UpdateWindow:
    """No days is every day, 0 minutes is 120; invalid values are refused (ValidationError, field
    ``window``). An answer always carries a valid window, so this reads answers too."""
    try:
        return UpdateWindow.model_validate(
            {"days": tuple(message.days) or WEEKDAYS, "start": message.start, "minutes": message.minutes or 120}
        )
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"invalid update window: {exc.errors()[0]['msg']}",
            field="window",
            hint="days: mon..sun; start: HH:MM (UTC); minutes: 15..1440",
        ) from None


def credentials_to_pb(credentials: AppCredentials) -> apps_pb2.AppCredentials:
    root = credentials.root_password.get_secret_value() if credentials.root_password is not None else None
    return apps_pb2.AppCredentials(
        app_id=credentials.app_id,
        root_password=root,
        secrets={k: v.get_secret_value() for k, v in credentials.secrets.items()},
    )


def credentials_from_pb(m: apps_pb2.AppCredentials) -> AppCredentials:
    return AppCredentials.model_validate(
        {"app_id": m.app_id, "root_password": optional_from_pb(m, "root_password"), "secrets": dict(m.secrets)}
    )


def discovered_to_pb(found: DiscoveredContainer) -> apps_pb2.DiscoveredContainer:
    return apps_pb2.DiscoveredContainer(
        host_id=found.host_id,
        host=found.host,
        node=found.node,
        vmid=found.vmid,
        name=found.name,
        status=found.status,
        tags=list(found.tags),
        lock=found.lock,
        resources=resources_to_pb(found.resources),
        uptime=found.uptime,
    )


def discovered_from_pb(m: apps_pb2.DiscoveredContainer) -> DiscoveredContainer:
    return DiscoveredContainer(
        host_id=m.host_id,
        host=m.host,
        node=m.node,
        vmid=m.vmid,
        name=optional_from_pb(m, "name"),
        status=m.status,
        tags=tuple(m.tags),
        lock=optional_from_pb(m, "lock"),
        resources=resources_from_pb(m.resources),
        uptime=optional_from_pb(m, "uptime"),
    )


# -- request parts: strategy, stop kill mode, environment ----------------------------------------

_STRATEGY_NUMBERS: dict[DeployStrategy, apps_pb2.DeployStrategy.ValueType] = {
    "auto": apps_pb2.DEPLOY_STRATEGY_AUTO,
    "oci": apps_pb2.DEPLOY_STRATEGY_OCI,
    "compose": apps_pb2.DEPLOY_STRATEGY_COMPOSE,
}
_STRATEGIES: dict[int, DeployStrategy] = {
    apps_pb2.DEPLOY_STRATEGY_UNSPECIFIED: "auto",
    **{n: s for s, n in _STRATEGY_NUMBERS.items()},
}


def strategy_to_pb(strategy: DeployStrategy) -> apps_pb2.DeployStrategy.ValueType:
    """A strategy already checked by the caller (``check_strategy``)."""
    return _STRATEGY_NUMBERS[strategy]


def strategy_from_pb(value: int) -> DeployStrategy:
    """Unspecified is ``auto``; an unknown number is refused (field ``strategy``)."""
    try:
        return _STRATEGIES[value]
    except KeyError:
        raise ValidationError(
            f"unknown deploy strategy {value}", field="strategy", hint="DEPLOY_STRATEGY_AUTO, _OCI or _COMPOSE"
        ) from None


_STOP_KILL_NUMBERS: dict[bool | None, apps_pb2.StopKill.ValueType] = {
    None: apps_pb2.STOP_KILL_UNSPECIFIED,
    False: apps_pb2.STOP_KILL_NEVER,
    True: apps_pb2.STOP_KILL_AFTER_TIMEOUT,
}
_STOP_KILLS: dict[int, bool | None] = {n: force for force, n in _STOP_KILL_NUMBERS.items()}


def stop_force_to_pb(force: bool | None) -> apps_pb2.StopKill.ValueType:
    """StopAppRequest's ``kill`` for ``Apps.stop``'s ``force`` (None: the app's own default)."""
    return _STOP_KILL_NUMBERS[force]


def stop_force_from_pb(kill: int, *, deprecated_force: bool = False) -> bool | None:
    """``Apps.stop``'s ``force`` from StopAppRequest: None is the app's own default. The
    deprecated ``force`` field still asks for a kill from clients older than ``kill``."""
    try:
        force = _STOP_KILLS[kill]
    except KeyError:
        raise ValidationError(
            f"unknown stop kill mode {kill}",
            field="kill",
            hint="STOP_KILL_NEVER, STOP_KILL_AFTER_TIMEOUT, or leave it unset",
        ) from None
    return True if force is None and deprecated_force else force


def environment_to_pb(environment: Mapping[str, str] | None) -> dict[str, str]:
    return dict(environment or {})


def environment_from_pb(values: Mapping[str, str]) -> dict[str, str] | None:
    """An empty map is None: proto3 cannot tell an empty environment from none given."""
    return dict(values) or None
