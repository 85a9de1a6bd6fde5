"""The wire (``proximity_sdk/_wire``), both directions: every model the agent sends comes back
equal (model -> pb -> bytes -> model), every request the remote client builds reads back on the
agent's side as the arguments it was given, and every ``*_to_pb`` has its ``*_from_pb`` beside it
(or a documented reason to be one way)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

import proximity_sdk._wire
from proximity_agent import status
from proximity_sdk import errors as sdk_errors
from proximity_sdk._pb.proximity.v1 import apps_pb2, backups_pb2, catalog_pb2
from proximity_sdk._wire import (
    _base,
    apps,
    backups,
    catalog,
    common,
    hosts,
    maintenance,
    operations,
    settings,
)
from proximity_sdk._wire.errors import (
    AGENT_ERROR_KINDS,
    INTERNAL_ERROR_KIND,
    WireError,
    error_class,
    error_from_metadata,
    error_to_metadata,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.app import App, AppCredentials, AppStatus, Port
from proximity_sdk.models.backup import Backup, BackupSchedule, BackupStats, BackupStatus, BackupTarget
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats, SecretSpec
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

T0 = datetime(2026, 11, 25, 23, 59, 58, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3, microseconds=7)
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
KNOWN_HOSTS = "pve1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

COMPOSE = {
    "services": {
        "web": {"image": "gitea/gitea:1.22", "ports": ["3000:3000"], "environment": {"A": "1"}},
        "db": {"image": "postgres:16"},
    }
}


def _app(**changes: Any) -> App:
    base = App(
        id="a1",
        hostname="web1",
        status=AppStatus.RUNNING,
        host_id="h1",
        catalog_id="gitea",
        catalog_version="1.22.0",
        owner_id="u1",
        node="pve1",
        vmid=101,
        address="10.0.0.5",
        url="http://10.0.0.5:3000",
        resources=Resources(cores=2, memory_mb=2048, swap_mb=0, disk_gb=8),
        ports=(Port(service="web", port=3000), Port(service="dns", port=53, protocol="udp")),
        config={"compose_text": "x", "usage": {"cpu": 0.5, "mem": 3}, "n": [1, 2.5, None, True]},
        adopted=False,
        created_at=T0,
        updated_at=T1,
        status_changed_at=T1,
    )
    return base.model_copy(update=changes)


# (name, the model, model -> pb as the agent answers, pb -> model as the remote client reads it)
ANSWERS: list[tuple[str, BaseModel, Callable[[Any], Any], Callable[[Any], Any]]] = [
    (
        "resources",
        Resources(cores=2, memory_mb=512, swap_mb=0, disk_gb=4),
        common.resources_to_pb,
        common.resources_from_pb,
    ),
    ("resources, bare", Resources(), common.resources_to_pb, common.resources_from_pb),
    ("app", _app(), apps.app_to_pb, apps.app_from_pb),
    (
        "app, bare",
        App(
            id="a2",
            hostname="x",
            status=AppStatus.VANISHED,
            host_id="h",
            created_at=T0,
            updated_at=T0,
            status_changed_at=T0,
        ),
        apps.app_to_pb,
        apps.app_from_pb,
    ),
    *[(f"app {s.value}", _app(status=s), apps.app_to_pb, apps.app_from_pb) for s in AppStatus],
    (
        "app update",
        AppUpdate(
            app_id="a1",
            hostname="web1",
            catalog_id="gitea",
            current_version="1.21",
            available_version="1.22",
            checked_at=T0,
            images=(
                ImageUpdate(image="gitea/gitea:latest", current_digest="sha256:a", available_digest="sha256:b"),
                ImageUpdate(image="redis", current_digest=None, available_digest="sha256:c"),
            ),
        ),
        apps.app_update_to_pb,
        apps.app_update_from_pb,
    ),
    (
        "app update, bare",
        AppUpdate(
            app_id="a1", hostname="web1", catalog_id=None, current_version=None, available_version=None, checked_at=T0
        ),
        apps.app_update_to_pb,
        apps.app_update_from_pb,
    ),
    (
        "credentials",
        AppCredentials(app_id="a1", root_password=SecretStr("pw"), secrets={"K": SecretStr("v")}),
        apps.credentials_to_pb,
        apps.credentials_from_pb,
    ),
    (
        "credentials, none",
        AppCredentials(app_id="a1", root_password=None, secrets={}),
        apps.credentials_to_pb,
        apps.credentials_from_pb,
    ),
    (
        "discovered",
        DiscoveredContainer(
            host_id="h1",
            host="lab",
            node="pve1",
            vmid=300,
            name="old",
            status="running",
            tags=("a", "b"),
            lock="backup",
            resources=Resources(cores=1),
            uptime=99,
        ),
        apps.discovered_to_pb,
        apps.discovered_from_pb,
    ),
    (
        "discovered, bare",
        DiscoveredContainer(host_id="h1", host="lab", node="pve1", vmid=300, status="unknown"),
        apps.discovered_to_pb,
        apps.discovered_from_pb,
    ),
    *[
        (
            f"operation {s.value}",
            Operation(
                id="o1",
                kind="backup-delete",
                status=s,
                app_id="a1",
                host_id="h1",
                vmid=101,
                owner_id="u1",
                steps=("queue", "vzdump"),
                current_step="vzdump",
                error="boom",
                result={"backup_id": "b1", "log_tail": ["x"]},
                deadline=T1,
                cancel_requested=True,
                created_at=T0,
                updated_at=T1,
                started_at=T0,
                finished_at=T1,
            ),
            operations.operation_to_pb,
            operations.operation_from_pb,
        )
        for s in OperationStatus
    ],
    (
        "operation, bare",
        Operation(id="o2", kind="start", status=OperationStatus.PENDING, created_at=T0, updated_at=T0),
        operations.operation_to_pb,
        operations.operation_from_pb,
    ),
    *[
        (
            f"event {level}",
            OperationEvent(operation_id="o1", seq=7, time=T0, step="up", level=level, message="m", progress=0.25),
            operations.event_to_pb,
            operations.event_from_pb,
        )
        for level in ("debug", "info", "warning", "error")
    ],
    (
        "event, bare",
        OperationEvent(operation_id="o1", seq=1, time=T0, message="queued"),
        operations.event_to_pb,
        operations.event_from_pb,
    ),
    (
        "catalog app",
        CatalogApp(
            id="gitea",
            name="Gitea",
            version="1.22.0",
            description="Git",
            category="Development",
            icon="gitea.svg",
            docker_compose=COMPOSE,
            tags=["git", "scm"],
            min_memory=1024,
            min_cpu=2,
            min_disk=10,
            ports=[3000, 22],
            volumes=["data:/data", {"type": "bind"}],
            environment={"USER_UID": "1000"},
            author="a",
            website="https://x",
            main_service="web",
            main_port=3000,
            health_path="/api/healthz",
            os_template="debian-12",
            secrets=[
                SecretSpec(name="DB_PASSWORD"),
                SecretSpec(name="KEY", kind="app-key"),
                SecretSpec(name="HASH", kind="sha256", of="DB_PASSWORD", description="d"),
                SecretSpec(name="H", kind="hex", length=16),
                SecretSpec(name="B", kind="base64", length=24),
            ],
        ),
        catalog.catalog_app_to_pb,
        catalog.catalog_app_from_pb,
    ),
    (
        "catalog app, bare",
        CatalogApp(
            id="x",
            name="X",
            version="1",
            description="",
            category="c",
            docker_compose={"services": {"x": {"image": "x"}}},
        ),
        catalog.catalog_app_to_pb,
        catalog.catalog_app_from_pb,
    ),
    (
        "catalog stats",
        CatalogStats(
            total_apps=3,
            total_categories=2,
            by_category={"a": 1, "b": 2},
            by_source={"builtin": 2, "dir": 1},
            problems=1,
            shadowed=1,
        ),
        catalog.catalog_stats_to_pb,
        catalog.catalog_stats_from_pb,
    ),
    (
        "catalog problem",
        CatalogProblem(source="dir", origin="/x.json", app_id="x", field="ports", message="bad"),
        catalog.catalog_problem_to_pb,
        catalog.catalog_problem_from_pb,
    ),
    (
        "catalog problem, bare",
        CatalogProblem(source="dir", origin="/x.json", message="not JSON"),
        catalog.catalog_problem_to_pb,
        catalog.catalog_problem_from_pb,
    ),
    (
        "catalog shadowing",
        CatalogShadowing(
            app_id="x",
            kept_origin="/b/x.json",
            kept_source="dir",
            shadowed_origin="builtin:x",
            shadowed_source="builtin",
        ),
        catalog.catalog_shadowing_to_pb,
        catalog.catalog_shadowing_from_pb,
    ),
    (
        "host, token",
        Host(
            id="h1",
            name="lab",
            url="https://pve:8006",
            auth="token",
            token_id="root@pam!px",
            verify_tls=False,
            ca_pem="-----BEGIN CERTIFICATE-----\n",
            is_default=True,
            ssh=SshAccess(
                user="admin",
                port=2222,
                known_hosts=KNOWN_HOSTS,
                trust_on_first_use=True,
                addresses={"pve1": "10.0.0.1"},
                connect_timeout=3.5,
            ),
            created_at=T0,
            updated_at=T1,
        ),
        hosts.host_to_pb,
        hosts.host_from_pb,
    ),
    (
        "host, password",
        Host(id="h2", name="b", url="https://b:8006", auth="password", user="root@pam", created_at=T0, updated_at=T0),
        hosts.host_to_pb,
        hosts.host_from_pb,
    ),
    (
        "node",
        Node(
            host_id="h1",
            name="pve1",
            status="online",
            cpus=8,
            maxmem=2**34,
            mem=2**30,
            maxdisk=2**40,
            disk=2**35,
            pve_version="8.2.4",
            last_seen_at=T0,
        ),
        hosts.node_to_pb,
        hosts.node_from_pb,
    ),
    ("node, bare", Node(host_id="h1", name="pve2"), hosts.node_to_pb, hosts.node_from_pb),
    (
        "host check",
        HostCheck(
            host_id="h1",
            name="lab",
            ok=True,
            version="8.2",
            nodes=["a", "b"],
            online_nodes=["a"],
            elapsed_ms=12.5,
            requests=2,
        ),
        hosts.host_check_to_pb,
        hosts.host_check_from_pb,
    ),
    (
        "host check, failed",
        HostCheck(
            host_id="h1", name="lab", ok=False, elapsed_ms=1.0, requests=1, error="no", error_kind="UnreachableError"
        ),
        hosts.host_check_to_pb,
        hosts.host_check_from_pb,
    ),
    (
        "host check, lacking privileges",
        HostCheck(
            host_id="h1",
            name="lab",
            ok=False,
            elapsed_ms=1.0,
            requests=9,
            error="lacks 2",
            error_kind="PermissionDeniedError",
            missing_privileges=[
                PrivilegeGap(privilege="VM.Backup", path="/vms", used_for="vzdump"),
                PrivilegeGap(privilege="SDN.Use", path="/sdn/zones/localnetwork/vmbr0", used_for="net"),
            ],
        ),
        hosts.host_check_to_pb,
        hosts.host_check_from_pb,
    ),
    (
        "storage",
        StorageStatus(
            storage="local",
            type="dir",
            content="backup,iso,vztmpl",
            active=True,
            enabled=True,
            shared=False,
            total=100,
            used=40,
            avail=60,
        ),
        hosts.storage_to_pb,
        hosts.storage_from_pb,
    ),
    ("storage, bare", StorageStatus(storage="nas", type="nfs"), hosts.storage_to_pb, hosts.storage_from_pb),
    (
        "reconcile report",
        ReconcileReport(
            started_at=T0,
            elapsed_ms=33.3,
            hosts=[
                HostReconcile(
                    host_id="h1",
                    host="lab",
                    reachable=True,
                    requests=1,
                    containers=3,
                    apps=2,
                    updated=1,
                    skipped_busy=1,
                    unknown=1,
                    elapsed_ms=10.0,
                ),
                HostReconcile(host_id="h2", host="b", reachable=False, error="down", error_kind="UnreachableError"),
            ],
            changes=[
                AppChange(
                    app_id="a1",
                    hostname="web1",
                    host_id="h1",
                    vmid=101,
                    status_before=AppStatus.RUNNING,
                    status_after=AppStatus.STOPPED,
                    node_before="pve1",
                    node_after="pve2",
                ),
                AppChange(
                    app_id="a2",
                    hostname="web2",
                    host_id="h1",
                    vmid=102,
                    status_before=AppStatus.RUNNING,
                    status_after=AppStatus.VANISHED,
                ),
            ],
        ),
        maintenance.reconcile_report_to_pb,
        maintenance.reconcile_report_from_pb,
    ),
    (
        "janitor report",
        JanitorReport(
            started_at=T0,
            elapsed_ms=5.0,
            failed=["o1"],
            asked_to_stop=["o2"],
            resumed=["o3", "o4"],
            errors=["e"],
            retired_destroyed=[
                RetiredDestroyed(
                    app_id="a1",
                    gone=True,
                    container=RetiredContainer(host_id="h1", node="pve1", vmid=150, hostname="web1", until=T1),
                )
            ],
        ),
        maintenance.janitor_report_to_pb,
        maintenance.janitor_report_from_pb,
    ),
    (
        "node sync report",
        NodeSyncReport(
            hosts=[
                HostNodeSync(host_id="h1", host="lab", ok=True, nodes=["pve1", "pve2"], online=["pve1"]),
                HostNodeSync(host_id="h2", host="b", ok=False, error="x", error_kind="TLSError"),
            ]
        ),
        maintenance.node_sync_report_to_pb,
        maintenance.node_sync_report_from_pb,
    ),
    ("settings, default", Settings(), settings.settings_to_pb, settings.settings_from_pb),
    (
        "settings, everything",
        Settings(
            default_cores=4,
            default_memory_mb=4096,
            default_swap_mb=0,
            default_disk_gb=20,
            rootfs_storage="fast",
            template_storage="nas",
            default_template="debian-12-standard",
            memory_overcommit=1.5,
            unprivileged=False,
            ssh_public_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me"],
            timezone="Europe/Paris",
            bridge="vmbr1",
            ip_mode="static",
            ip_pool="10.0.0.10-10.0.0.20",
            ip_subnet="10.0.0.0/24",
            gateway="10.0.0.1",
            dns_servers=["1.1.1.1"],
            vlan_tag=12,
            restore_grace_hours=2.5,
            operation_lease_seconds=30,
            health_timeout_seconds=60,
            vmid_min=1000,
            vmid_max=2000,
        ),
        settings.settings_to_pb,
        settings.settings_from_pb,
    ),
    *[
        (
            f"backup {s.value}",
            Backup(
                id="b1",
                app_id="a1",
                hostname="web1",
                status=s,
                mode=mode,
                compression=compression,
                target="nas",
                host_id="h1",
                node="pve1",
                vmid=101,
                storage="local",
                volid="local:backup/x.tar.zst",
                size_bytes=10**9,
                note="n",
                error="e",
                schedule_id="s1",
                location="/mnt/x",
                duration_seconds=12.5,
                created_at=T0,
                completed_at=T1,
            ),
            backups.backup_to_pb,
            backups.backup_from_pb,
        )
        for s, mode, compression in zip(
            BackupStatus,
            ("snapshot", "suspend", "stop", "snapshot", "stop"),
            ("zstd", "gzip", "lzo", "none", "zstd"),
            strict=True,
        )
    ],
    (
        "backup, bare",
        Backup(id="b2", app_id=None, hostname="gone", status=BackupStatus.FAILED, created_at=T0),
        backups.backup_to_pb,
        backups.backup_from_pb,
    ),
    (
        "backup stats",
        BackupStats(
            total=3,
            by_status={BackupStatus.COMPLETED: 2, BackupStatus.FAILED: 1},
            completed_size_bytes=300,
            average_size_bytes=150,
        ),
        backups.backup_stats_to_pb,
        backups.backup_stats_from_pb,
    ),
    (
        "backup stats, empty",
        BackupStats(total=0, by_status={}, completed_size_bytes=0),
        backups.backup_stats_to_pb,
        backups.backup_stats_from_pb,
    ),
    (
        "schedule",
        BackupSchedule(
            id="s1",
            app_id="a1",
            cron="0 3 * * *",
            keep_last=7,
            keep_daily=3,
            keep_weekly=2,
            target="nas",
            enabled=False,
            last_run_at=T0,
            next_run_at=T1,
            created_at=T0,
        ),
        backups.backup_schedule_to_pb,
        backups.backup_schedule_from_pb,
    ),
    (
        "schedule, bare",
        BackupSchedule(id="s2", app_id="a1", cron="* * * * *", created_at=T0),
        backups.backup_schedule_to_pb,
        backups.backup_schedule_from_pb,
    ),
    (
        "target",
        BackupTarget(id="t1", name="nas", kind="proxmox", created_at=T0),
        backups.backup_target_to_pb,
        backups.backup_target_from_pb,
    ),
]


def _through_the_wire(message: Any) -> Any:
    """The message as the other end parses it from the bytes on the wire."""
    if isinstance(message, Message):
        return type(message).FromString(message.SerializeToString())
    return message


def _same(back: Any, model: Any) -> None:
    assert type(back) is type(model)
    if isinstance(model, AppCredentials) and isinstance(back, AppCredentials):  # SecretStr: compare the values
        assert back.model_dump(mode="json") == model.model_dump(mode="json")
        assert {k: v.get_secret_value() for k, v in back.secrets.items()} == {
            k: v.get_secret_value() for k, v in model.secrets.items()
        }
        assert (back.root_password and back.root_password.get_secret_value()) == (
            model.root_password and model.root_password.get_secret_value()
        )
    else:
        assert back == model


@pytest.mark.parametrize(("model", "to_pb", "from_pb"), [c[1:] for c in ANSWERS], ids=[c[0] for c in ANSWERS])
def test_model_to_pb_to_model(model: BaseModel, to_pb: Callable[[Any], Any], from_pb: Callable[[Any], Any]) -> None:
    _same(from_pb(_through_the_wire(to_pb(model))), model)


def test_a_hosts_ssh_key_path_stays_on_the_agent() -> None:
    # Known difference: the key (a path or contents on the agent) never comes back; known_hosts as
    # a path on the agent's machine means nothing to a client either.
    host = Host(
        id="h",
        name="lab",
        url="https://pve:8006",
        auth="token",
        token_id="root@pam!px",
        created_at=T0,
        updated_at=T0,
        ssh=SshAccess(key_file="/root/.ssh/id_ed25519", known_hosts="/root/.ssh/known_hosts"),
    )
    back = hosts.host_from_pb(hosts.host_to_pb(host))
    assert back.ssh == SshAccess()
    assert back.model_copy(update={"ssh": host.ssh}) == host


def test_an_answer_from_a_newer_agent_reads_with_defaults() -> None:
    # an enum left unspecified in an answer reads as its default; a missing timestamp as the epoch
    app = apps.app_from_pb(apps_pb2.App(id="a", hostname="x", host_id="h"))
    assert app.status is AppStatus.ERROR
    assert app.created_at == datetime.fromtimestamp(0, UTC)
    assert backups.backup_status_from_pb(0) is BackupStatus.FAILED
    message = catalog.catalog_app_to_pb(
        CatalogApp(
            id="x",
            name="X",
            version="1",
            description="",
            category="c",
            docker_compose={"services": {"x": {"image": "x"}}},
        )
    )
    message.secrets.add(name="S", length=32)
    assert catalog.catalog_app_from_pb(message).secrets[0].kind == "password"


# -- requests: the remote client's arguments -> pb -> the agent's reading of them -------------------


@dataclass(frozen=True)
class Request:
    """A request part: ``value`` sent with ``to_pb`` and read back with ``from_pb``. ``send`` and
    ``read`` adapt the calls when the functions take more than the value (a message, a field)."""

    name: str
    value: Any
    to_pb: Callable[..., Any]
    from_pb: Callable[..., Any]
    send: Callable[[Callable[..., Any], Any], Any] = lambda to_pb, value: to_pb(value)
    read: Callable[[Callable[..., Any], Any], Any] = lambda from_pb, message: from_pb(message)


def _in_request(message_type: type[Message], field: str) -> Callable[[Callable[..., Any], Any], Any]:
    """``send`` for a part that fills one field of a request message."""
    return lambda to_pb, value: message_type(**{field: to_pb(value)})


def _of_request(field: str) -> Callable[[Callable[..., Any], Any], Any]:
    """``read`` for a part read from one field of a request message."""
    return lambda from_pb, message: from_pb(getattr(message, field))


def _settings_update(fields: dict[str, Any]) -> Request:
    return Request(
        f"settings update {sorted(fields)}",
        fields,
        settings.settings_update_to_pb,
        settings.settings_update_from_pb,
        send=lambda to_pb, value: to_pb(value),
        read=lambda from_pb, sent: from_pb(_through_the_wire(sent[0]), FieldMask(paths=sent[1])),
    )


REQUESTS: list[Request] = [
    *[
        Request(f"resources {r}", r, common.resources_to_pb, common.resources_from_pb)
        for r in (Resources(), Resources(cores=1, memory_mb=16, swap_mb=0, disk_gb=1))
    ],
    *[
        Request(
            f"now {t}",
            t,
            common.timestamp_to_pb,
            common.timestamp_from_pb,
            send=_in_request(apps_pb2.RunDueAppUpdatesRequest, "now"),
            read=lambda from_pb, message: from_pb(message, "now"),
        )
        for t in (T0, None)
    ],
    *[
        Request(f"app status filter {s}", s, apps.app_status_filter_to_pb, apps.app_status_filter_from_pb)
        for s in (None, *AppStatus)
    ],
    *[Request(f"app status {s}", s, apps.app_status_to_pb, apps.app_status_from_pb) for s in AppStatus],
    *[Request(f"strategy {s}", s, apps.strategy_to_pb, apps.strategy_from_pb) for s in ("auto", "oci", "compose")],
    *[Request(f"stop force {f}", f, apps.stop_force_to_pb, apps.stop_force_from_pb) for f in (None, False, True)],
    *[
        Request(
            f"environment {e}",
            e,
            apps.environment_to_pb,
            apps.environment_from_pb,
            send=_in_request(apps_pb2.DeployAppRequest, "environment"),
            read=_of_request("environment"),
        )
        for e in (None, {"A": "1", "B": ""})
    ],
    *[
        Request(f"update window {w}", w, apps.update_window_to_pb, apps.update_window_from_pb)
        for w in (UpdateWindow(start="03:00"), UpdateWindow(days=("sat", "sun"), start="23:45", minutes=15))
    ],
    *[
        Request(
            f"operation status filter {s}",
            s,
            operations.operation_status_filter_to_pb,
            operations.operation_status_filter_from_pb,
        )
        for s in (None, *OperationStatus)
    ],
    *[
        Request(
            f"backup status filter {s}", s, backups.backup_status_filter_to_pb, backups.backup_status_filter_from_pb
        )
        for s in (None, *BackupStatus)
    ],
    *[
        Request(f"backup status {s}", s, backups.backup_status_to_pb, backups.backup_status_from_pb)
        for s in BackupStatus
    ],
    *[
        Request(f"backup mode {m}", m, backups.backup_mode_to_pb, backups.backup_mode_from_pb)
        for m in ("snapshot", "suspend", "stop")
    ],
    *[
        Request(f"compression {c}", c, backups.backup_compression_to_pb, backups.backup_compression_from_pb)
        for c in ("zstd", "gzip", "lzo", "none")
    ],
    *[
        Request(
            f"retention {k}",
            k,
            backups.retention_to_pb,
            backups.retention_from_pb,
            send=lambda to_pb, keeps: backups_pb2.CreateBackupScheduleRequest(**to_pb(**keeps)),
        )
        for k in (
            {"keep_last": 7, "keep_daily": None, "keep_weekly": None},
            {"keep_last": None, "keep_daily": 3, "keep_weekly": 2},
            {"keep_last": 1, "keep_daily": 10_000, "keep_weekly": 1},
        )
    ],
    *[
        Request(f"target options {o}", o, backups.target_options_to_pb, backups.target_options_from_pb)
        for o in ({}, {"storage": "nas", "port": 22, "nested": {"a": [1, None, True]}})
    ],
    _settings_update(
        {
            "default_cores": 3,
            "ip_mode": "static",
            "dns_servers": ["9.9.9.9"],
            "timezone": None,
            "vlan_tag": 7,
            "memory_overcommit": 1.25,
            "unprivileged": False,
        }
    ),
    _settings_update({"ip_mode": "dhcp", "ssh_public_keys": [], "vmid_min": 100, "vmid_max": None}),
    *[
        Request(f"ssh {s}", s, hosts.ssh_to_pb, hosts.ssh_from_pb)
        for s in (
            SshAccess(),
            SshAccess(
                user="admin",
                port=2222,
                known_hosts=KNOWN_HOSTS,
                trust_on_first_use=True,
                addresses={"pve1": "10.0.0.1"},
                connect_timeout=3.5,
            ),
        )
    ],
    Request(
        "host spec",
        dict(
            name="lab",
            url="https://pve:8006",
            token_id="root@pam!px",
            token_secret="s3",
            user=None,
            password=None,
            verify_tls=False,
            ca_pem="-----BEGIN CERTIFICATE-----\n",
            ssh=SshAccess(key_file=KEY, known_hosts=KNOWN_HOSTS),
        ),
        hosts.host_spec_to_pb,
        hosts.host_spec_from_pb,
    ),
    Request(
        "host spec, password",
        dict(
            name="b",
            url="https://b:8006",
            token_id=None,
            token_secret=None,
            user="root@pam",
            password="pw",
            verify_tls=True,
            ca_pem=None,
            ssh=None,
        ),
        hosts.host_spec_to_pb,
        hosts.host_spec_from_pb,
    ),
    *[
        Request(
            f"host update {sorted(fields)}",
            fields,
            hosts.host_update_to_pb,
            hosts.host_update_from_pb,
            read=lambda from_pb, sent: from_pb(_through_the_wire(sent[0]), FieldMask(paths=sent[1])),
        )
        for fields in (
            {"url": "https://other:8006", "ssh": None, "ca_pem": None},
            {"name": "lab2", "verify_tls": False, "password": "pw", "ssh": SshAccess(user="u")},
        )
    ],
    # the base helpers, through a message that carries them
    *[
        Request(
            f"json {v!r}",
            v,
            _base.json_to_pb,
            _base.json_from_pb,
            read=lambda from_pb, text, v=v: from_pb(text, default=v),
        )
        for v in ({}, [], {"b": [1, 2.5, None, True], "a": "é"})
    ],
    Request(
        "enum",
        "sha256",
        _base.enum_to_pb,
        _base.enum_from_pb,
        send=lambda to_pb, value: to_pb("SECRET_KIND_", catalog_pb2.SecretKind, value),
        read=lambda from_pb, number: from_pb("SECRET_KIND_", catalog_pb2.SecretKind, number),
    ),
]


@pytest.mark.parametrize("request_part", REQUESTS, ids=[r.name for r in REQUESTS])
def test_request_to_pb_to_arguments(request_part: Request) -> None:
    sent = _through_the_wire(request_part.send(request_part.to_pb, request_part.value))
    assert request_part.read(request_part.from_pb, sent) == request_part.value


def test_the_deprecated_force_still_asks_for_a_kill() -> None:
    assert apps.stop_force_from_pb(apps_pb2.STOP_KILL_UNSPECIFIED, deprecated_force=True) is True
    assert apps.stop_force_from_pb(apps_pb2.STOP_KILL_NEVER, deprecated_force=True) is False
    with pytest.raises(ValidationError) as unknown:
        apps.stop_force_from_pb(99)
    assert unknown.value.field == "kill"


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_every_timestamp_comes_back(moment: datetime) -> None:
    message = _through_the_wire(apps_pb2.RunDueAppUpdatesRequest(now=common.timestamp_to_pb(moment)))
    assert common.timestamp_from_pb(message, "now") == moment


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.none()
        | st.just(UTC)
        | st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))),
    )
)
def test_a_timestamp_is_what_protobuf_itself_makes_of_the_moment(moment: datetime) -> None:
    # timestamp_to_pb does the arithmetic itself (faster than FromDatetime): the same message,
    # before the epoch, at any offset, and with a naive moment read as UTC
    expected = Timestamp()
    expected.FromDatetime(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
    assert common.timestamp_to_pb(moment) == expected


@given(
    st.builds(
        Resources,
        cores=st.none() | st.integers(1, 8192),
        memory_mb=st.none() | st.integers(16, 4 << 20),
        swap_mb=st.none() | st.integers(0, 4 << 20),
        disk_gb=st.none() | st.integers(1, 128 << 10),
    )
)
def test_every_resources_comes_back(resources: Resources) -> None:
    assert common.resources_from_pb(_through_the_wire(common.resources_to_pb(resources))) == resources


def test_host_spec_reads_files_here_and_sends_contents(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text(KEY)
    known = tmp_path / "known_hosts"
    known.write_text(KNOWN_HOSTS)
    ssh = SshAccess(
        user="admin",
        port=2200,
        key_file=str(key),
        known_hosts=str(known),
        addresses={"pve1": "10.0.0.1"},
        connect_timeout=4.0,
    )
    fields = dict(
        name="lab",
        url="https://pve:8006",
        token_id="root@pam!px",
        token_secret=SecretStr("s3"),
        user=None,
        password=None,
        verify_tls=False,
        ca_pem="-----BEGIN CERTIFICATE-----\n",
        ssh=ssh,
    )
    read = hosts.host_spec_from_pb(_through_the_wire(hosts.host_spec_to_pb(fields)))
    assert read == {
        **fields,
        "token_secret": "s3",
        "ssh": ssh.model_copy(update={"key_file": KEY, "known_hosts": KNOWN_HOSTS}),
    }

    with pytest.raises(ValidationError) as missing:
        hosts.host_spec_to_pb({"ssh": SshAccess(key_file=str(tmp_path / "nope"))})
    assert missing.value.field == "ssh.key_file"
    with pytest.raises(ValidationError) as unknown:
        hosts.host_spec_to_pb({"colour": "blue"})
    assert unknown.value.field == "colour"


def test_settings_update_refusals() -> None:
    _, unchanged = settings.settings_update_to_pb({"default_cores": None})
    assert unchanged == []  # None leaves a required setting as it is
    with pytest.raises(ValidationError) as wrong:
        settings.settings_update_to_pb({"default_cores": "many"})
    assert wrong.value.field == "default_cores"
    with pytest.raises(ValidationError) as unknown:
        settings.settings_update_to_pb({"colour": "blue"})
    assert unknown.value.field == "colour"


# -- one module per proto file, both directions side by side, one name per meaning --------------

# Conversions that exist in one direction only, and why.
ONE_WAY = {
    "users.role_from_pb": "UserService is the agent's own administration: no SDK client sends it",
    "users.user_to_pb": "UserService is the agent's own administration: no SDK client reads it",
    "users.token_to_pb": "UserService is the agent's own administration: no SDK client reads it",
    "_base.required_timestamp_from_pb": "reads an answer's always-set timestamp; timestamp_to_pb writes it",
    "_base.known_enum_from_pb": "reads an answer's enum tolerantly; enum_to_pb writes it",
    "_base.optional_from_pb": "reads presence; a None given to a message constructor leaves the field unset",
    "_base.mask_paths_from_pb": "reads an update mask; *_update_to_pb return the paths it is built from",
}


def _wire_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"proximity_sdk._wire.{m.name}")
        for m in pkgutil.iter_modules(proximity_sdk._wire.__path__)
    ]


def _conversions() -> dict[str, Any]:
    """``module.name`` -> function, for every ``*_to_pb`` and ``*_from_pb`` a ``_wire`` module exports."""
    return {
        f"{module.__name__.rsplit('.', 1)[1]}.{name}": getattr(module, name)
        for module in _wire_modules()
        for name in module.__all__
        if name.endswith(("_to_pb", "_from_pb"))
    }


def test_there_is_one_module_per_proto_file() -> None:
    protos = {p.stem for p in (Path(__file__).resolve().parents[2] / "proto/proximity/v1").glob("*.proto")}
    assert protos <= {m.__name__.rsplit(".", 1)[1] for m in _wire_modules()}


def test_every_conversion_has_its_inverse_beside_it() -> None:
    found = _conversions()
    lonely = []
    for qualified in found:
        inverse = (
            qualified.removesuffix("_to_pb") + "_from_pb"
            if qualified.endswith("_to_pb")
            else qualified.removesuffix("_from_pb") + "_to_pb"
        )
        if inverse not in found and qualified not in ONE_WAY:
            lonely.append(qualified)
    assert lonely == [], f"without their other direction (add it, or say why in ONE_WAY): {lonely}"
    assert set(ONE_WAY) <= set(found), "ONE_WAY names a conversion that is gone"


def test_every_pair_comes_back_in_a_test() -> None:
    found = _conversions()
    pairs = {
        (found[q], found[q.removesuffix("_to_pb") + "_from_pb"])
        for q in found
        if q.endswith("_to_pb") and q.removesuffix("_to_pb") + "_from_pb" in found
    }
    tested = {(c[2], c[3]) for c in ANSWERS} | {(r.to_pb, r.from_pb) for r in REQUESTS}
    untested = sorted(f"{to.__module__}.{to.__name__}" for to, _ in pairs - tested)
    assert untested == [], f"pairs without a round trip in ANSWERS or REQUESTS: {untested}"


def test_one_name_means_one_thing_across_the_wire() -> None:
    meanings: dict[str, set[int]] = {}
    for module in _wire_modules():
        for name in module.__all__:
            meanings.setdefault(name, set()).add(id(getattr(module, name)))
    assert [name for name, objects in meanings.items() if len(objects) > 1] == []


# -- errors: the trailing metadata both ends share -----------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        WireError(kind="NotFoundError"),
        WireError(kind="ValidationError", field="spec.url", hint="Give an https:// URL"),
        WireError(kind=INTERNAL_ERROR_KIND),
    ],
)
def test_error_metadata_comes_back(error: WireError) -> None:
    assert error_from_metadata(dict(error_to_metadata(error))) == error


def test_error_metadata_is_printable_ascii_and_bounded() -> None:
    sent = dict(error_to_metadata(WireError(kind="ValidationError", field="x" * 300, hint="naïve\n" * 500)))
    assert all(32 <= ord(ch) < 127 for value in sent.values() for ch in value)
    assert error_from_metadata(sent) == WireError(kind="ValidationError", field="x" * 200, hint=("na?ve?" * 500)[:1000])
    assert error_from_metadata({}) is None  # no kind: the transport failed, not the agent


def test_the_agents_own_error_classes_read_as_their_sdk_base() -> None:
    own = {
        cls.__name__: cls for cls in (status.CallerNotAuthenticated, status.CallerNotAllowed, status.CallerOverQuota)
    }
    assert set(AGENT_ERROR_KINDS) == {*own, INTERNAL_ERROR_KIND}
    for name, cls in own.items():
        assert cls.__bases__ == (error_class(name),)
    assert error_class(INTERNAL_ERROR_KIND) is sdk_errors.ProximityError
    assert error_class("NotFoundError") is sdk_errors.NotFoundError
    assert error_class("ANewerAgentsError") is sdk_errors.ProximityError
    failure = status.to_failure(sdk_errors.ValidationError("bad", field="spec.url", hint="Fix it"))
    assert error_from_metadata(dict(failure.metadata)) == WireError(
        kind="ValidationError", field="spec.url", hint="Fix it"
    )
