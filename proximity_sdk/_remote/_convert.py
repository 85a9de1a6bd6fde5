"""Every proto <-> pydantic conversion of the remote SDK, in one module: ``*_from_pb`` build the
SDK's models from the agent's answers (the inverse of ``proximity_agent/convert.py`` and
``convert_backups.py``), ``*_to_pb`` build request messages from the SDK's arguments.

Files named in arguments (an SSH key, known_hosts, a CA) are read HERE and their contents sent:
the agent never reads a path a client names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    backups_pb2,
    common_pb2,
    hosts_pb2,
    maintenance_pb2,
    operations_pb2,
    settings_pb2,
)
from proximity_sdk._remote._convert_base import (
    _choice,
    _enum_from_pb,
    _enum_to_pb,
    _json,
    _opt,
    _ts,
    _ts_required,
    timestamp_to_pb,
)
from proximity_sdk._remote._convert_catalog import (
    catalog_app_from_pb,
    catalog_problem_from_pb,
    catalog_shadowing_from_pb,
    catalog_stats_from_pb,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, AppCredentials, AppStatus, Port
from proximity_sdk.models.backup import (
    BACKUP_MODES,
    COMPRESSIONS,
    Backup,
    BackupSchedule,
    BackupStats,
    BackupStatus,
    BackupTarget,
)
from proximity_sdk.models.discovered import DiscoveredContainer
from proximity_sdk.models.host import Host, Node
from proximity_sdk.models.host_check import HostCheck, PrivilegeGap
from proximity_sdk.models.maintenance import (
    AppChange,
    HostNodeSync,
    HostReconcile,
    JanitorReport,
    NodeSyncReport,
    ReconcileReport,
    RetiredContainer,
    RetiredDestroyed,
)
from proximity_sdk.models.operation import Operation, OperationEvent, OperationStatus
from proximity_sdk.models.proxmox import StorageStatus
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.settings import Settings
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.models.update import AppUpdate, ImageUpdate, UpdateWindow

__all__ = [
    "app_from_pb",
    "app_status_to_pb",
    "app_update_from_pb",
    "backup_compression_to_pb",
    "backup_from_pb",
    "backup_mode_to_pb",
    "backup_schedule_from_pb",
    "backup_stats_from_pb",
    "backup_status_to_pb",
    "backup_target_from_pb",
    "catalog_app_from_pb",
    "catalog_problem_from_pb",
    "catalog_shadowing_from_pb",
    "catalog_stats_from_pb",
    "credentials_from_pb",
    "discovered_from_pb",
    "event_from_pb",
    "host_check_from_pb",
    "host_from_pb",
    "host_spec_to_pb",
    "janitor_report_from_pb",
    "node_from_pb",
    "node_sync_report_from_pb",
    "operation_from_pb",
    "operation_status_to_pb",
    "reconcile_report_from_pb",
    "resources_from_pb",
    "resources_to_pb",
    "settings_from_pb",
    "settings_to_pb",
    "ssh_to_pb",
    "storage_from_pb",
    "timestamp_to_pb",
]



# -- basics: _convert_base.py; catalog: _convert_catalog.py (re-exported above) -----------------


# -- resources, apps -----------------------------------------------------------------------------


def resources_to_pb(resources: Resources) -> common_pb2.Resources:
    return common_pb2.Resources(cores=resources.cores, memory_mb=resources.memory_mb, swap_mb=resources.swap_mb,
                                disk_gb=resources.disk_gb)


def resources_from_pb(message: common_pb2.Resources) -> Resources:
    return Resources(cores=_opt(message, "cores"), memory_mb=_opt(message, "memory_mb"),
                     swap_mb=_opt(message, "swap_mb"), disk_gb=_opt(message, "disk_gb"))


_APP_STATUSES = [s.value for s in AppStatus]


def app_status_to_pb(status: AppStatus | None) -> Any:
    return 0 if status is None else _enum_to_pb("APP_STATUS_", apps_pb2.AppStatus, status.value)


def _app_status(number: int) -> AppStatus:
    return AppStatus(_enum_from_pb("APP_STATUS_", apps_pb2.AppStatus, number, _APP_STATUSES, "error"))


def app_from_pb(m: apps_pb2.App) -> App:
    ports = tuple(Port(service=p.service, port=p.port,
                       protocol=_enum_from_pb("PORT_PROTOCOL_", apps_pb2.PortProtocol, p.protocol, ("tcp", "udp"),
                                              "tcp"))
                  for p in m.ports)
    return App(id=m.id, hostname=m.hostname, status=_app_status(m.status), host_id=m.host_id,
               catalog_id=_opt(m, "catalog_id"), catalog_version=_opt(m, "catalog_version"),
               owner_id=_opt(m, "owner_id"), node=_opt(m, "node"), vmid=_opt(m, "vmid"), address=_opt(m, "address"),
               url=_opt(m, "url"), resources=resources_from_pb(m.resources), ports=ports,
               config=_json(m.config_json, {}), adopted=m.adopted, created_at=_ts_required(m, "created_at"),
               updated_at=_ts_required(m, "updated_at"), status_changed_at=_ts_required(m, "status_changed_at"))


def app_update_from_pb(m: apps_pb2.AppUpdate) -> AppUpdate:
    images = tuple(ImageUpdate(image=i.image, current_digest=_opt(i, "current_digest"),
                               available_digest=i.available_digest) for i in m.images)
    return AppUpdate(app_id=m.app_id, hostname=m.hostname, catalog_id=_opt(m, "catalog_id"),
                     current_version=_opt(m, "current_version"), available_version=_opt(m, "available_version"),
                     images=images, checked_at=_ts_required(m, "checked_at"))


def update_window_to_pb(window: UpdateWindow) -> apps_pb2.UpdateWindow:
    return apps_pb2.UpdateWindow(days=list(window.days), start=window.start, minutes=window.minutes)


def update_window_from_pb(m: apps_pb2.UpdateWindow) -> UpdateWindow:
    return UpdateWindow.model_validate({"days": tuple(m.days), "start": m.start, "minutes": m.minutes})


def credentials_from_pb(m: apps_pb2.AppCredentials) -> AppCredentials:
    return AppCredentials.model_validate({"app_id": m.app_id, "root_password": _opt(m, "root_password"),
                                          "secrets": dict(m.secrets)})


def discovered_from_pb(m: apps_pb2.DiscoveredContainer) -> DiscoveredContainer:
    return DiscoveredContainer(host_id=m.host_id, host=m.host, node=m.node, vmid=m.vmid, name=_opt(m, "name"),
                               status=m.status, tags=tuple(m.tags), lock=_opt(m, "lock"),
                               resources=resources_from_pb(m.resources), uptime=_opt(m, "uptime"))


# -- operations ----------------------------------------------------------------------------------


_OP_STATUSES = [s.value for s in OperationStatus]
_LEVELS = ("debug", "info", "warning", "error")


def operation_status_to_pb(status: OperationStatus | str | None) -> Any:
    if status is None:
        return 0
    value = _choice(str(status.value if isinstance(status, OperationStatus) else status), _OP_STATUSES, "status")
    return _enum_to_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, value)


def operation_from_pb(m: operations_pb2.Operation) -> Operation:
    status = _enum_from_pb("OPERATION_STATUS_", operations_pb2.OperationStatus, m.status, _OP_STATUSES, "pending")
    return Operation(id=m.id, kind=m.kind, status=OperationStatus(status), app_id=_opt(m, "app_id"),
                     host_id=_opt(m, "host_id"), vmid=_opt(m, "vmid"), owner_id=_opt(m, "owner_id"),
                     steps=tuple(m.steps), current_step=_opt(m, "current_step"), error=_opt(m, "error"),
                     result=_json(m.result_json, {}), deadline=_ts(m, "deadline"),
                     cancel_requested=m.cancel_requested, created_at=_ts_required(m, "created_at"),
                     updated_at=_ts_required(m, "updated_at"), started_at=_ts(m, "started_at"),
                     finished_at=_ts(m, "finished_at"))


def event_from_pb(m: operations_pb2.OperationEvent) -> OperationEvent:
    level = _enum_from_pb("OPERATION_EVENT_LEVEL_", operations_pb2.OperationEventLevel, m.level, _LEVELS, "info")
    return OperationEvent(operation_id=m.operation_id, seq=m.seq, time=_ts_required(m, "time"), step=_opt(m, "step"),
                          level=level, message=m.message, progress=_opt(m, "progress"))


# -- hosts and nodes -----------------------------------------------------------------------------


def host_from_pb(m: hosts_pb2.Host) -> Host:
    ssh = None
    if m.HasField("ssh"):
        # the key never leaves the agent (and a path there means nothing here): key_file is None
        ssh = SshAccess(user=m.ssh.user or "root", port=m.ssh.port or 22, known_hosts=_opt(m.ssh, "known_hosts"),
                        trust_on_first_use=m.ssh.trust_on_first_use, addresses=dict(m.ssh.addresses),
                        connect_timeout=m.ssh.connect_timeout_seconds or 10.0)
    auth = _enum_from_pb("HOST_AUTH_", hosts_pb2.HostAuth, m.auth, ("token", "password"), "token")
    return Host(id=m.id, name=m.name, url=m.url, auth=auth, token_id=_opt(m, "token_id"),
                user=_opt(m, "user"), verify_tls=m.verify_tls, ca_pem=_opt(m, "ca_pem"), ssh=ssh,
                is_default=m.is_default, created_at=_ts_required(m, "created_at"),
                updated_at=_ts_required(m, "updated_at"))


def _read_text(path: str, field: str) -> str:
    where = Path(path).expanduser()
    try:
        return where.read_text()
    except FileNotFoundError:
        raise ValidationError(f"{field}: {str(where)!r} does not exist", field=field) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field}: {str(where)!r} cannot be read: {exc}", field=field) from None


def ssh_to_pb(ssh: SshAccess, *, field: str = "ssh") -> hosts_pb2.SshAccess:
    """SSH access as the agent takes it: the key file and known_hosts file are read here."""
    if not isinstance(ssh, SshAccess):
        raise ValidationError("ssh must be an SshAccess(...)", field=field)
    from proximity_sdk.proxmox._ssh import looks_like_key_text, looks_like_known_hosts_text  # paramiko: lazily

    key = ssh.key_file
    if key is not None and not looks_like_key_text(key):
        key = _read_text(key, f"{field}.key_file")
    known = ssh.known_hosts
    if known is not None and not looks_like_known_hosts_text(known):
        if Path(known).expanduser().exists() or not ssh.trust_on_first_use:
            known = _read_text(known, f"{field}.known_hosts")
        else:
            known = None  # a known_hosts file to be written by trust on first use: the agent keeps its own
    return hosts_pb2.SshAccess(user=ssh.user, port=ssh.port, private_key=key, known_hosts=known or None,
                               trust_on_first_use=ssh.trust_on_first_use, addresses=dict(ssh.addresses),
                               connect_timeout_seconds=ssh.connect_timeout)


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


_HOST_FIELDS = ("name", "url", "token_id", "token_secret", "user", "password", "verify_tls", "ca_pem", "ssh")


def host_spec_to_pb(fields: Mapping[str, Any]) -> hosts_pb2.HostSpec:
    """A HostSpec with the given fields (``ssh`` an SshAccess, secrets as text or SecretStr)."""
    unknown = sorted(set(fields) - set(_HOST_FIELDS))
    if unknown:
        raise ValidationError(f"unknown host field(s) {', '.join(unknown)}; known: {', '.join(_HOST_FIELDS)}",
                              field=unknown[0])
    spec = hosts_pb2.HostSpec()
    for name, value in fields.items():
        if value is None:
            continue
        if name == "ssh":
            spec.ssh.CopyFrom(ssh_to_pb(value))
        elif name in {"token_secret", "password"}:
            setattr(spec, name, _secret(value))
        elif name == "verify_tls":
            if not isinstance(value, bool):
                raise ValidationError("verify_tls must be True or False", field="verify_tls")
            spec.verify_tls = value
        else:
            if not isinstance(value, str):
                raise ValidationError(f"{name} must be text", field=name)
            setattr(spec, name, value)
    return spec


def node_from_pb(m: hosts_pb2.Node) -> Node:
    return Node(host_id=m.host_id, name=m.name, status=m.status or "unknown", cpus=_opt(m, "cpus"),
                maxmem=_opt(m, "maxmem"), mem=_opt(m, "mem"), maxdisk=_opt(m, "maxdisk"), disk=_opt(m, "disk"),
                pve_version=_opt(m, "pve_version"), last_seen_at=_ts(m, "last_seen_at"))


def host_check_from_pb(m: hosts_pb2.HostCheck) -> HostCheck:
    return HostCheck(host_id=m.host_id, name=m.name, ok=m.ok, version=_opt(m, "version"), nodes=list(m.nodes),
                     online_nodes=list(m.online_nodes), elapsed_ms=m.elapsed_ms, requests=m.requests,
                     error=_opt(m, "error"), error_kind=_opt(m, "error_kind"),
                     missing_privileges=[PrivilegeGap(privilege=g.privilege, path=g.path, used_for=g.used_for)
                                         for g in m.missing_privileges])


def storage_from_pb(m: hosts_pb2.Storage) -> StorageStatus:
    return StorageStatus.model_validate({
        "storage": m.storage, "type": m.type, "content": ",".join(m.content), "active": m.active,
        "enabled": m.enabled, "shared": m.shared, "total": _opt(m, "total"), "used": _opt(m, "used"),
        "avail": _opt(m, "avail")})


# -- maintenance reports ---------------------------------------------------------------------------


def reconcile_report_from_pb(m: maintenance_pb2.ReconcileReport) -> ReconcileReport:
    hosts = [HostReconcile(host_id=h.host_id, host=h.host, reachable=h.reachable, error=_opt(h, "error"),
                           error_kind=_opt(h, "error_kind"), requests=h.requests, containers=h.containers,
                           apps=h.apps, updated=h.updated, skipped_busy=h.skipped_busy, unknown=h.unknown,
                           elapsed_ms=h.elapsed_ms) for h in m.hosts]
    changes = [AppChange(app_id=c.app_id, hostname=c.hostname, host_id=c.host_id, vmid=c.vmid,
                         status_before=_app_status(c.status_before), status_after=_app_status(c.status_after),
                         node_before=_opt(c, "node_before"), node_after=_opt(c, "node_after")) for c in m.changes]
    return ReconcileReport(started_at=_ts_required(m, "started_at"), elapsed_ms=m.elapsed_ms, hosts=hosts,
                           changes=changes)


def janitor_report_from_pb(m: maintenance_pb2.JanitorReport) -> JanitorReport:
    retired = [RetiredDestroyed(app_id=r.app_id, gone=r.gone, container=RetiredContainer(
        host_id=r.container.host_id, node=r.container.node, vmid=r.container.vmid, hostname=r.container.hostname,
        until=_ts_required(r.container, "until"))) for r in m.retired_destroyed]
    return JanitorReport(started_at=_ts_required(m, "started_at"), elapsed_ms=m.elapsed_ms,
                         failed=list(m.failed_operation_ids), asked_to_stop=list(m.asked_to_stop_operation_ids),
                         resumed=list(m.resumed_operation_ids), retired_destroyed=retired, errors=list(m.errors))


def node_sync_report_from_pb(m: maintenance_pb2.NodeSyncReport) -> NodeSyncReport:
    return NodeSyncReport(hosts=[HostNodeSync(host_id=h.host_id, host=h.host, ok=h.ok, nodes=list(h.nodes),
                                              online=list(h.online), error=_opt(h, "error"),
                                              error_kind=_opt(h, "error_kind")) for h in m.hosts])


# -- settings ------------------------------------------------------------------------------------

_SETTINGS_FIELDS = settings_pb2.Settings.DESCRIPTOR.fields_by_name


def settings_from_pb(m: settings_pb2.Settings) -> Settings:
    values: dict[str, Any] = {}
    for name, field in _SETTINGS_FIELDS.items():
        if name == "ip_mode":
            values[name] = _enum_from_pb("IP_MODE_", settings_pb2.IpMode, m.ip_mode, ("dhcp", "static"), "dhcp")
        elif field.has_presence:
            values[name] = _opt(m, name)
        elif name in {"ssh_public_keys", "dns_servers"}:
            values[name] = list(getattr(m, name))
        else:
            values[name] = getattr(m, name)
    return Settings.model_validate(values)


def settings_to_pb(fields: Mapping[str, Any]) -> tuple[settings_pb2.Settings, list[str]]:
    """The Settings message and the update mask for ``px.settings.update(**fields)``. A None
    clears an optional setting; for the others None means 'unchanged', as locally."""
    message = settings_pb2.Settings()
    paths: list[str] = []
    for name, value in fields.items():
        field = _SETTINGS_FIELDS.get(name)
        if field is None:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(sorted(_SETTINGS_FIELDS))}",
                                  field=name)
        if value is None and not field.has_presence:
            continue
        paths.append(name)
        if value is None:
            continue
        try:
            if name == "ip_mode":
                message.ip_mode = _enum_to_pb("IP_MODE_", settings_pb2.IpMode,
                                              _choice(value, ("dhcp", "static"), "ip_mode"))
            elif name in {"ssh_public_keys", "dns_servers"}:
                if isinstance(value, str):
                    raise TypeError("a list of text, not one string")
                getattr(message, name).extend([str(v) for v in value])
            else:
                setattr(message, name, value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"setting {name}: {exc}", field=name) from None
    return message, paths


# -- backups -------------------------------------------------------------------------------------


_BACKUP_STATUSES = [s.value for s in BackupStatus]


def backup_status_to_pb(status: BackupStatus | str | None) -> Any:
    if status is None:
        return 0
    value = _choice(status.value if isinstance(status, BackupStatus) else status, _BACKUP_STATUSES, "status")
    return _enum_to_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, value)


def backup_mode_to_pb(mode: object) -> Any:
    return _enum_to_pb("BACKUP_MODE_", backups_pb2.BackupMode, _choice(mode, BACKUP_MODES, "mode"))


def backup_compression_to_pb(compression: object) -> Any:
    return _enum_to_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression,
                       _choice(compression, COMPRESSIONS, "compression"))


def _backup_status(number: int) -> BackupStatus:
    return BackupStatus(_enum_from_pb("BACKUP_STATUS_", backups_pb2.BackupStatus, number, _BACKUP_STATUSES,
                                      "failed"))


def backup_from_pb(m: backups_pb2.Backup) -> Backup:
    mode = _enum_from_pb("BACKUP_MODE_", backups_pb2.BackupMode, m.mode, BACKUP_MODES, "snapshot")
    compression = _enum_from_pb("BACKUP_COMPRESSION_", backups_pb2.BackupCompression, m.compression, COMPRESSIONS,
                                "zstd")
    return Backup(id=m.id, app_id=_opt(m, "app_id"), hostname=m.hostname, status=_backup_status(m.status),
                  mode=mode, compression=compression, target=_opt(m, "target"),
                  host_id=_opt(m, "host_id"), node=_opt(m, "node"), vmid=_opt(m, "vmid"),
                  storage=_opt(m, "storage"), volid=_opt(m, "volid"), size_bytes=_opt(m, "size_bytes"),
                  note=_opt(m, "note"), error=_opt(m, "error"), schedule_id=_opt(m, "schedule_id"),
                  location=_opt(m, "location"), duration_seconds=_opt(m, "duration_seconds"),
                  created_at=_ts_required(m, "created_at"), completed_at=_ts(m, "completed_at"))


def backup_stats_from_pb(m: backups_pb2.BackupStats) -> BackupStats:
    by_status = {_backup_status(c.status): c.count for c in m.by_status}
    return BackupStats(total=m.total, by_status=by_status, completed_size_bytes=m.completed_size_bytes,
                       average_size_bytes=_opt(m, "average_size_bytes"))


def backup_schedule_from_pb(m: backups_pb2.BackupSchedule) -> BackupSchedule:
    return BackupSchedule(id=m.id, app_id=m.app_id, cron=m.cron, keep_last=_opt(m, "keep_last"),
                          keep_daily=_opt(m, "keep_daily"), keep_weekly=_opt(m, "keep_weekly"),
                          target=_opt(m, "target"), enabled=m.enabled, last_run_at=_ts(m, "last_run_at"),
                          next_run_at=_ts(m, "next_run_at"), created_at=_ts_required(m, "created_at"))


def backup_target_from_pb(m: backups_pb2.BackupTarget) -> BackupTarget:
    return BackupTarget(id=m.id, name=m.name, kind=m.kind, created_at=_ts_required(m, "created_at"))
