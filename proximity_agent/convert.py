"""Every proto <-> pydantic conversion of the agent, in one module; BackupService's live in
``convert_backups.py`` (same rules, built on the helpers here).

Responses: ``<model>_to_pb`` from the SDK's models. Requests: ``*_from_pb`` build what the SDK's
calls take; what they cannot express (a path where file *contents* are expected, an unknown
field mask path, an unspecified enum where one is required) is refused with ``ValidationError``
naming the field, which the agent answers with INVALID_ARGUMENT. Secrets never go into a
response message here, except :func:`credentials_to_pb` (GetAppCredentials) by design.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    catalog_pb2,
    common_pb2,
    hosts_pb2,
    maintenance_pb2,
    operations_pb2,
    settings_pb2,
    users_pb2,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, AppCredentials, AppStatus, DeployStrategy
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.host import Host, Node
from proximity_sdk.models.host_check import HostCheck
from proximity_sdk.models.maintenance import JanitorReport, NodeSyncReport, ReconcileReport
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.models.proxmox import StorageStatus
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.models.update import WEEKDAYS, AppUpdate, UpdateWindow
from proximity_sdk.models.user import ApiToken, Role, User
from proximity_sdk.proxmox._ssh import looks_like_key_text, looks_like_known_hosts_text

__all__ = [
    "app_status_from_pb",
    "app_to_pb",
    "app_update_to_pb",
    "catalog_app_to_pb",
    "catalog_problem_to_pb",
    "catalog_shadowing_to_pb",
    "catalog_stats_to_pb",
    "credentials_to_pb",
    "discovered_to_pb",
    "environment_from_pb",
    "event_to_pb",
    "host_check_to_pb",
    "host_spec_fields",
    "host_to_pb",
    "host_update_fields",
    "janitor_report_to_pb",
    "node_sync_report_to_pb",
    "node_to_pb",
    "operation_status_from_pb",
    "operation_to_pb",
    "reconcile_report_to_pb",
    "resources_from_pb",
    "resources_to_pb",
    "role_from_pb",
    "settings_to_pb",
    "settings_update_fields",
    "ssh_from_pb",
    "stop_force_from_pb",
    "storage_to_pb",
    "text_or_none",
    "timestamp_from_pb",
    "token_to_pb",
    "user_to_pb",
]


# -- basics --------------------------------------------------------------------------------------


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return stamp


def timestamp_from_pb(message: Any, field: str) -> datetime | None:
    """A Timestamp field of ``message`` as an aware datetime, None when absent."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _opt(message: Any, field: str) -> Any:
    """An ``optional`` field's value, None when unset."""
    return getattr(message, field) if message.HasField(field) else None


def _mask_paths(mask: FieldMask, allowed: Iterable[str], *, what: str) -> list[str]:
    paths = list(dict.fromkeys(mask.paths))
    if not paths:
        raise ValidationError(f"update_mask is empty: name the {what} fields to change", field="update_mask")
    known = set(allowed)
    unknown = [p for p in paths if p not in known]
    if unknown:
        raise ValidationError(f"update_mask names unknown {what} field(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}", field="update_mask")
    return paths


def _enum_to_pb(prefix: str, enum_type: Any, value: str) -> Any:
    return enum_type.Value(prefix + value.upper().replace("-", "_"))


def _enum_from_pb(prefix: str, enum_type: Any, number: int, *, field: str | None = None) -> str | None:
    if number == 0:
        return None
    try:
        name: str = enum_type.Name(number)
    except ValueError:
        raise ValidationError(f"unknown {prefix.lower().rstrip('_')} value {number}", field=field) from None
    return name.removeprefix(prefix).lower()


# -- resources, apps -----------------------------------------------------------------------------


def resources_to_pb(resources: Resources) -> common_pb2.Resources:
    return common_pb2.Resources(cores=resources.cores, memory_mb=resources.memory_mb, swap_mb=resources.swap_mb,
                                disk_gb=resources.disk_gb)


def resources_from_pb(message: common_pb2.Resources, *, field: str = "resources") -> Resources:
    try:
        return Resources(cores=_opt(message, "cores"), memory_mb=_opt(message, "memory_mb"),
                         swap_mb=_opt(message, "swap_mb"), disk_gb=_opt(message, "disk_gb"))
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValidationError(f"{field}.{where}: {problem['msg']}", field=f"{field}.{where}") from None


def app_status_from_pb(number: int) -> AppStatus | None:
    value = _enum_from_pb("APP_STATUS_", apps_pb2.AppStatus, number)
    return AppStatus(value) if value is not None else None


def app_to_pb(app: App) -> apps_pb2.App:
    return apps_pb2.App(
        id=app.id, hostname=app.hostname, status=_enum_to_pb("APP_STATUS_", apps_pb2.AppStatus, app.status.value),
        host_id=app.host_id, catalog_id=app.catalog_id, catalog_version=app.catalog_version, owner_id=app.owner_id,
        node=app.node, vmid=app.vmid, address=app.address, url=app.url, resources=resources_to_pb(app.resources),
        ports=[apps_pb2.Port(service=p.service, port=p.port,
                             protocol=_enum_to_pb("PORT_PROTOCOL_", apps_pb2.PortProtocol, p.protocol))
               for p in app.ports],
        config_json=_json(app.config), adopted=app.adopted, created_at=_ts(app.created_at),
        updated_at=_ts(app.updated_at), status_changed_at=_ts(app.status_changed_at))


def app_update_to_pb(update: AppUpdate) -> apps_pb2.AppUpdate:
    return apps_pb2.AppUpdate(
        app_id=update.app_id, hostname=update.hostname, catalog_id=update.catalog_id,
        current_version=update.current_version, available_version=update.available_version,
        images=[apps_pb2.ImageUpdate(image=i.image, current_digest=i.current_digest,
                                     available_digest=i.available_digest) for i in update.images],
        checked_at=_ts(update.checked_at))


_STRATEGIES: dict[int, DeployStrategy] = {
    apps_pb2.DEPLOY_STRATEGY_UNSPECIFIED: "auto", apps_pb2.DEPLOY_STRATEGY_AUTO: "auto",
    apps_pb2.DEPLOY_STRATEGY_OCI: "oci", apps_pb2.DEPLOY_STRATEGY_COMPOSE: "compose",
}


def strategy_from_pb(value: int) -> DeployStrategy:
    try:
        return _STRATEGIES[value]
    except KeyError:
        raise ValidationError(f"unknown deploy strategy {value}", field="strategy",
                              hint="DEPLOY_STRATEGY_AUTO, _OCI or _COMPOSE") from None


_STOP_KILLS: dict[int, bool | None] = {
    apps_pb2.STOP_KILL_UNSPECIFIED: None, apps_pb2.STOP_KILL_NEVER: False, apps_pb2.STOP_KILL_AFTER_TIMEOUT: True,
}


def stop_force_from_pb(kill: int, deprecated_force: bool) -> bool | None:
    """``Apps.stop``'s ``force`` from StopAppRequest: None is the app's own default. The
    deprecated ``force`` field still asks for a kill from clients older than ``kill``."""
    try:
        force = _STOP_KILLS[kill]
    except KeyError:
        raise ValidationError(f"unknown stop kill mode {kill}", field="kill",
                              hint="STOP_KILL_NEVER, STOP_KILL_AFTER_TIMEOUT, or leave it unset") from None
    return True if force is None and deprecated_force else force


def update_window_to_pb(window: UpdateWindow) -> apps_pb2.UpdateWindow:
    return apps_pb2.UpdateWindow(days=list(window.days), start=window.start, minutes=window.minutes)


def update_window_from_pb(message: apps_pb2.UpdateWindow) -> UpdateWindow:
    """A window from a request: invalid values are refused here (ValidationError, field ``window``)."""
    try:
        return UpdateWindow.model_validate({"days": tuple(message.days) or WEEKDAYS, "start": message.start,
                                            "minutes": message.minutes or 120})
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid update window: {exc.errors()[0]['msg']}", field="window",
                              hint="days: mon..sun; start: HH:MM (UTC); minutes: 15..1440") from None


def credentials_to_pb(credentials: AppCredentials) -> apps_pb2.AppCredentials:
    root = credentials.root_password.get_secret_value() if credentials.root_password is not None else None
    return apps_pb2.AppCredentials(app_id=credentials.app_id, root_password=root,
                                   secrets={k: v.get_secret_value() for k, v in credentials.secrets.items()})


def discovered_to_pb(found: DiscoveredContainer) -> apps_pb2.DiscoveredContainer:
    return apps_pb2.DiscoveredContainer(
        host_id=found.host_id, host=found.host, node=found.node, vmid=found.vmid, name=found.name,
        status=found.status, tags=list(found.tags), lock=found.lock, resources=resources_to_pb(found.resources),
        uptime=found.uptime)


# -- operations ----------------------------------------------------------------------------------


def operation_status_from_pb(number: int) -> OperationStatus | None:
    value = _enum_from_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, number)
    return OperationStatus(value) if value is not None else None


def operation_to_pb(op: Operation) -> operations_pb2.Operation:
    return operations_pb2.Operation(
        id=op.id, kind=op.kind,
        status=_enum_to_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, op.status.value),
        app_id=op.app_id, host_id=op.host_id, vmid=op.vmid, owner_id=op.owner_id, steps=list(op.steps),
        current_step=op.current_step, error=op.error, result_json=_json(op.result), deadline=_ts(op.deadline),
        cancel_requested=op.cancel_requested, created_at=_ts(op.created_at), updated_at=_ts(op.updated_at),
        started_at=_ts(op.started_at), finished_at=_ts(op.finished_at))


def event_to_pb(event: OperationEvent) -> operations_pb2.OperationEvent:
    return operations_pb2.OperationEvent(
        operation_id=event.operation_id, seq=event.seq, time=_ts(event.time), step=event.step,
        level=_enum_to_pb("OPERATION_EVENT_LEVEL_", operations_pb2.OperationEventLevel, event.level),
        message=event.message, progress=event.progress)


# -- catalog -------------------------------------------------------------------------------------


def catalog_app_to_pb(app: CatalogApp) -> catalog_pb2.CatalogApp:
    return catalog_pb2.CatalogApp(
        id=app.id, name=app.name, version=app.version, description=app.description, category=app.category,
        icon=app.icon, docker_compose_json=_json(app.docker_compose), tags=list(app.tags),
        min_memory=app.min_memory, min_cpu=app.min_cpu, min_disk=app.min_disk, ports=list(app.ports),
        volumes_json=_json(app.volumes), environment=dict(app.environment), author=app.author,
        website=app.website, main_service=app.main_service, main_port=app.main_port,
        health_path=app.health_path, os_template=app.os_template,
        secrets=[catalog_pb2.SecretSpec(name=s.name, kind=_enum_to_pb("SECRET_KIND_", catalog_pb2.SecretKind, s.kind),
                                        length=s.length, of=s.of, description=s.description)
                 for s in app.secrets])


def catalog_stats_to_pb(stats: CatalogStats) -> catalog_pb2.CatalogStats:
    return catalog_pb2.CatalogStats(total_apps=stats.total_apps, total_categories=stats.total_categories,
                                    by_category=dict(stats.by_category), by_source=dict(stats.by_source),
                                    problems=stats.problems, shadowed=stats.shadowed)


def catalog_problem_to_pb(problem: CatalogProblem) -> catalog_pb2.CatalogProblem:
    return catalog_pb2.CatalogProblem(source=problem.source, origin=problem.origin, app_id=problem.app_id,
                                      field=problem.field, message=problem.message)


def catalog_shadowing_to_pb(shadowing: CatalogShadowing) -> catalog_pb2.CatalogShadowing:
    return catalog_pb2.CatalogShadowing(**shadowing.model_dump())


# -- hosts and nodes -----------------------------------------------------------------------------


def host_to_pb(host: Host) -> hosts_pb2.Host:
    ssh = None
    if host.ssh is not None:
        ssh = hosts_pb2.HostSshAccess(
            user=host.ssh.user, port=host.ssh.port, private_key_set=host.ssh.key_file is not None,
            known_hosts=host.ssh.known_hosts if host.ssh.known_hosts and looks_like_known_hosts_text(
                host.ssh.known_hosts) else None,
            trust_on_first_use=host.ssh.trust_on_first_use, addresses=dict(host.ssh.addresses),
            connect_timeout_seconds=host.ssh.connect_timeout)
    return hosts_pb2.Host(
        id=host.id, name=host.name, url=host.url,
        auth=_enum_to_pb("HOST_AUTH_", hosts_pb2.HostAuth, host.auth), token_id=host.token_id, user=host.user,
        verify_tls=host.verify_tls, ca_pem=host.ca_pem, ssh=ssh, is_default=host.is_default,
        created_at=_ts(host.created_at), updated_at=_ts(host.updated_at))


def ssh_from_pb(message: hosts_pb2.SshAccess, *, field: str = "ssh") -> SshAccess:
    """SSH access as sent: key and known_hosts are *contents*. A path would name a file on the
    agent's machine, which a remote caller must never make the agent read."""
    key = _opt(message, "private_key")
    if key is not None and not looks_like_key_text(key):
        raise ValidationError("private_key must be the key's text (-----BEGIN ...), not a path: the client "
                              "reads the file and sends its content", field=f"{field}.private_key")
    known = _opt(message, "known_hosts")
    if known is not None and known.strip() and not looks_like_known_hosts_text(known):
        raise ValidationError("known_hosts must be known_hosts lines ('<host> <key type> <base64 key>'), "
                              "not a path", field=f"{field}.known_hosts")
    try:
        return SshAccess(user=message.user or "root", port=message.port or 22, key_file=key,
                         known_hosts=known or None, trust_on_first_use=message.trust_on_first_use,
                         addresses=dict(message.addresses),
                         connect_timeout=message.connect_timeout_seconds or 10.0)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValidationError(f"{field}.{where}: {problem['msg']}", field=f"{field}.{where}") from None


def host_spec_fields(spec: hosts_pb2.HostSpec) -> dict[str, Any]:
    """Keyword arguments of ``px.hosts.add`` (name first) from a HostSpec."""
    return dict(
        name=spec.name, url=spec.url, token_id=_opt(spec, "token_id"), token_secret=_opt(spec, "token_secret"),
        user=_opt(spec, "user"), password=_opt(spec, "password"),
        verify_tls=spec.verify_tls if spec.HasField("verify_tls") else True, ca_pem=_opt(spec, "ca_pem"),
        ssh=ssh_from_pb(spec.ssh, field="spec.ssh") if spec.HasField("ssh") else None)


_HOST_MASK = ("name", "url", "token_id", "token_secret", "user", "password", "verify_tls", "ca_pem", "ssh")
_HOST_CLEARABLE = {"ca_pem", "ssh"}


def host_update_fields(spec: hosts_pb2.HostSpec, mask: FieldMask) -> dict[str, Any]:
    """Keyword arguments of ``px.hosts.update`` for the fields named in the mask."""
    fields: dict[str, Any] = {}
    for path in _mask_paths(mask, _HOST_MASK, what="host"):
        if path in {"name", "url"}:
            if not getattr(spec, path):
                raise ValidationError(f"spec.{path} is named in update_mask but empty", field=f"spec.{path}")
            fields[path] = getattr(spec, path)
        elif path == "ssh":
            fields["ssh"] = ssh_from_pb(spec.ssh, field="spec.ssh") if spec.HasField("ssh") else None
        elif spec.HasField(path):  # type: ignore[arg-type]  # one of the optional fields
            fields[path] = getattr(spec, path)
        elif path in _HOST_CLEARABLE:
            fields[path] = None
        else:
            raise ValidationError(f"spec.{path} is named in update_mask but not set", field=f"spec.{path}")
    return fields


def node_to_pb(node: Node) -> hosts_pb2.Node:
    return hosts_pb2.Node(host_id=node.host_id, name=node.name, status=node.status, cpus=node.cpus,
                          maxmem=node.maxmem, mem=node.mem, maxdisk=node.maxdisk, disk=node.disk,
                          pve_version=node.pve_version, last_seen_at=_ts(node.last_seen_at))


def host_check_to_pb(check: HostCheck) -> hosts_pb2.HostCheck:
    return hosts_pb2.HostCheck(host_id=check.host_id, name=check.name, ok=check.ok, version=check.version,
                               nodes=list(check.nodes), online_nodes=list(check.online_nodes),
                               elapsed_ms=check.elapsed_ms, requests=check.requests, error=check.error,
                               error_kind=check.error_kind,
                               missing_privileges=[hosts_pb2.PrivilegeGap(privilege=g.privilege, path=g.path,
                                                                          used_for=g.used_for)
                                                   for g in check.missing_privileges])


def storage_to_pb(storage: StorageStatus) -> hosts_pb2.Storage:
    return hosts_pb2.Storage(storage=storage.storage, type=storage.type, content=storage.content_types,
                             active=storage.active, enabled=storage.enabled, shared=storage.shared,
                             total=storage.total, used=storage.used, avail=storage.avail)


# -- maintenance reports ------------------------------------------------------------------------------


def _app_status_pb(status: AppStatus) -> Any:
    return _enum_to_pb("APP_STATUS_", apps_pb2.AppStatus, status.value)


def reconcile_report_to_pb(report: ReconcileReport) -> maintenance_pb2.ReconcileReport:
    return maintenance_pb2.ReconcileReport(
        started_at=_ts(report.started_at), elapsed_ms=report.elapsed_ms,
        hosts=[maintenance_pb2.HostReconcile(**h.model_dump()) for h in report.hosts],
        changes=[maintenance_pb2.AppChange(
            app_id=c.app_id, hostname=c.hostname, host_id=c.host_id, vmid=c.vmid,
            status_before=_app_status_pb(c.status_before), status_after=_app_status_pb(c.status_after),
            node_before=c.node_before, node_after=c.node_after) for c in report.changes])


def janitor_report_to_pb(report: JanitorReport) -> maintenance_pb2.JanitorReport:
    return maintenance_pb2.JanitorReport(
        started_at=_ts(report.started_at), elapsed_ms=report.elapsed_ms, failed_operation_ids=report.failed,
        asked_to_stop_operation_ids=report.asked_to_stop, resumed_operation_ids=report.resumed,
        retired_destroyed=[maintenance_pb2.RetiredDestroyed(
            app_id=r.app_id, gone=r.gone, container=maintenance_pb2.RetiredContainer(
                host_id=r.container.host_id, node=r.container.node, vmid=r.container.vmid,
                hostname=r.container.hostname, until=_ts(r.container.until))) for r in report.retired_destroyed],
        errors=report.errors)


def node_sync_report_to_pb(report: NodeSyncReport) -> maintenance_pb2.NodeSyncReport:
    return maintenance_pb2.NodeSyncReport(hosts=[maintenance_pb2.HostNodeSync(**h.model_dump()) for h in report.hosts])


# -- settings ------------------------------------------------------------------------------------

_SETTINGS_PB_FIELDS = frozenset(settings_pb2.Settings.DESCRIPTOR.fields_by_name)
_SETTINGS_OPTIONAL = ("timezone", "ip_pool", "ip_subnet", "gateway", "vlan_tag", "vmid_min", "vmid_max")


def settings_to_pb(settings: Settings) -> settings_pb2.Settings:
    values = {k: v for k, v in settings.model_dump().items() if k in _SETTINGS_PB_FIELDS}
    values["ip_mode"] = _enum_to_pb("IP_MODE_", settings_pb2.IpMode, settings.ip_mode)
    return settings_pb2.Settings(**values)


def settings_update_fields(message: settings_pb2.Settings, mask: FieldMask) -> dict[str, Any]:
    """Keyword arguments of ``px.settings.update`` for the fields named in the mask. A named
    optional field left unset clears it; enums left unspecified take their documented default."""
    fields: dict[str, Any] = {}
    for path in _mask_paths(mask, _SETTINGS_PB_FIELDS & set(Settings.model_fields), what="settings"):
        if path == "ip_mode":
            fields[path] = _enum_from_pb("IP_MODE_", settings_pb2.IpMode, message.ip_mode) or "dhcp"
        elif path in _SETTINGS_OPTIONAL:
            fields[path] = _opt(message, path)
        elif path in {"ssh_public_keys", "dns_servers"}:
            fields[path] = list(getattr(message, path))
        else:
            fields[path] = getattr(message, path)
    return fields


# -- users ---------------------------------------------------------------------------------------


def role_from_pb(number: int, *, field: str = "role") -> Role:
    value = _enum_from_pb("ROLE_", users_pb2.Role, number)
    if value is None:
        raise ValidationError("role is required: ROLE_ADMIN or ROLE_MEMBER", field=field)
    return Role(value)


def user_to_pb(user: User) -> users_pb2.User:
    return users_pb2.User(id=user.id, name=user.name, role=_enum_to_pb("ROLE_", users_pb2.Role, user.role.value),
                          disabled=user.disabled, created_at=_ts(user.created_at))


def token_to_pb(token: ApiToken, *, revoked_at: datetime | None = None) -> users_pb2.Token:
    return users_pb2.Token(id=token.id, user_id=token.user_id, name=token.name, created_at=_ts(token.created_at),
                           expires_at=_ts(token.expires_at), last_used_at=_ts(token.last_used_at),
                           revoked_at=_ts(revoked_at))


def environment_from_pb(values: Mapping[str, str]) -> dict[str, str] | None:
    return dict(values) or None


def text_or_none(value: str) -> str | None:
    """Proto3 strings cannot be absent: empty means 'not given'."""
    return value or None
