"""Every model the agent sends comes back equal: model -> pb (the agent's convert.py /
convert_backups.py) -> bytes on the wire -> model (the remote SDK's _convert.py). And every
request the remote SDK builds reads back, on the agent's side, as the arguments it was given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from pydantic import BaseModel, SecretStr

from proximity_agent import convert as agent
from proximity_agent import convert_backups as agent_backups
from proximity_sdk._remote import _convert as remote
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
from proximity_sdk.models.update import AppUpdate, ImageUpdate

T0 = datetime(2026, 11, 25, 23, 59, 58, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3, microseconds=7)
KNOWN_HOSTS = "pve1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

COMPOSE = {"services": {"web": {"image": "gitea/gitea:1.22", "ports": ["3000:3000"],
                                "environment": {"A": "1"}}, "db": {"image": "postgres:16"}}}


def _app(**changes: Any) -> App:
    base = App(id="a1", hostname="web1", status=AppStatus.RUNNING, host_id="h1", catalog_id="gitea",
               catalog_version="1.22.0", owner_id="u1", node="pve1", vmid=101, address="10.0.0.5",
               url="http://10.0.0.5:3000", resources=Resources(cores=2, memory_mb=2048, swap_mb=0, disk_gb=8),
               ports=(Port(service="web", port=3000), Port(service="dns", port=53, protocol="udp")),
               config={"compose_text": "x", "usage": {"cpu": 0.5, "mem": 3}, "n": [1, 2.5, None, True]},
               adopted=False, created_at=T0, updated_at=T1, status_changed_at=T1)
    return base.model_copy(update=changes)


# (name, the model, the agent's model -> pb, the remote's pb -> model)
CASES: list[tuple[str, BaseModel, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("resources", Resources(cores=2, memory_mb=512, swap_mb=0, disk_gb=4), agent.resources_to_pb,
     remote.resources_from_pb),
    ("resources, bare", Resources(), agent.resources_to_pb, remote.resources_from_pb),
    ("app", _app(), agent.app_to_pb, remote.app_from_pb),
    ("app, bare", App(id="a2", hostname="x", status=AppStatus.VANISHED, host_id="h", created_at=T0, updated_at=T0,
                      status_changed_at=T0), agent.app_to_pb, remote.app_from_pb),
    *[(f"app {s.value}", _app(status=s), agent.app_to_pb, remote.app_from_pb) for s in AppStatus],
    ("app update", AppUpdate(app_id="a1", hostname="web1", catalog_id="gitea", current_version="1.21",
                             available_version="1.22", checked_at=T0,
                             images=(ImageUpdate(image="gitea/gitea:latest", current_digest="sha256:a",
                                                 available_digest="sha256:b"),
                                     ImageUpdate(image="redis", current_digest=None, available_digest="sha256:c"))),
     agent.app_update_to_pb, remote.app_update_from_pb),
    ("app update, bare", AppUpdate(app_id="a1", hostname="web1", catalog_id=None, current_version=None,
                                   available_version=None, checked_at=T0),
     agent.app_update_to_pb, remote.app_update_from_pb),
    ("credentials", AppCredentials(app_id="a1", root_password=SecretStr("pw"), secrets={"K": SecretStr("v")}),
     agent.credentials_to_pb, remote.credentials_from_pb),
    ("credentials, none", AppCredentials(app_id="a1", root_password=None, secrets={}),
     agent.credentials_to_pb, remote.credentials_from_pb),
    ("discovered", DiscoveredContainer(host_id="h1", host="lab", node="pve1", vmid=300, name="old", status="running",
                                       tags=("a", "b"), lock="backup", resources=Resources(cores=1), uptime=99),
     agent.discovered_to_pb, remote.discovered_from_pb),
    ("discovered, bare", DiscoveredContainer(host_id="h1", host="lab", node="pve1", vmid=300, status="unknown"),
     agent.discovered_to_pb, remote.discovered_from_pb),
    *[(f"operation {s.value}", Operation(
        id="o1", kind="backup-delete", status=s, app_id="a1", host_id="h1", vmid=101, owner_id="u1",
        steps=("queue", "vzdump"), current_step="vzdump", error="boom", result={"backup_id": "b1", "log_tail": ["x"]},
        deadline=T1, cancel_requested=True, created_at=T0, updated_at=T1, started_at=T0, finished_at=T1),
       agent.operation_to_pb, remote.operation_from_pb) for s in OperationStatus],
    ("operation, bare", Operation(id="o2", kind="start", status=OperationStatus.PENDING, created_at=T0, updated_at=T0),
     agent.operation_to_pb, remote.operation_from_pb),
    *[(f"event {level}", OperationEvent(operation_id="o1", seq=7, time=T0, step="up", level=level, message="m",
                                        progress=0.25), agent.event_to_pb, remote.event_from_pb)
      for level in ("debug", "info", "warning", "error")],
    ("event, bare", OperationEvent(operation_id="o1", seq=1, time=T0, message="queued"),
     agent.event_to_pb, remote.event_from_pb),
    ("catalog app", CatalogApp(
        id="gitea", name="Gitea", version="1.22.0", description="Git", category="Development", icon="gitea.svg",
        docker_compose=COMPOSE, tags=["git", "scm"], min_memory=1024, min_cpu=2, min_disk=10, ports=[3000, 22],
        volumes=["data:/data", {"type": "bind"}], environment={"USER_UID": "1000"}, author="a", website="https://x",
        main_service="web", main_port=3000, health_path="/api/healthz", os_template="debian-12",
        secrets=[SecretSpec(name="DB_PASSWORD"), SecretSpec(name="KEY", kind="app-key"),
                 SecretSpec(name="HASH", kind="sha256", of="DB_PASSWORD", description="d"),
                 SecretSpec(name="H", kind="hex", length=16), SecretSpec(name="B", kind="base64", length=24)]),
     agent.catalog_app_to_pb, remote.catalog_app_from_pb),
    ("catalog app, bare", CatalogApp(id="x", name="X", version="1", description="", category="c",
                                     docker_compose={"services": {"x": {"image": "x"}}}),
     agent.catalog_app_to_pb, remote.catalog_app_from_pb),
    ("catalog stats", CatalogStats(total_apps=3, total_categories=2, by_category={"a": 1, "b": 2},
                                   by_source={"builtin": 2, "dir": 1}, problems=1, shadowed=1),
     agent.catalog_stats_to_pb, remote.catalog_stats_from_pb),
    ("catalog problem", CatalogProblem(source="dir", origin="/x.json", app_id="x", field="ports", message="bad"),
     agent.catalog_problem_to_pb, remote.catalog_problem_from_pb),
    ("catalog problem, bare", CatalogProblem(source="dir", origin="/x.json", message="not JSON"),
     agent.catalog_problem_to_pb, remote.catalog_problem_from_pb),
    ("catalog shadowing", CatalogShadowing(app_id="x", kept_origin="/b/x.json", kept_source="dir",
                                           shadowed_origin="builtin:x", shadowed_source="builtin"),
     agent.catalog_shadowing_to_pb, remote.catalog_shadowing_from_pb),
    ("host, token", Host(id="h1", name="lab", url="https://pve:8006", auth="token", token_id="root@pam!px",
                         verify_tls=False, ca_pem="-----BEGIN CERTIFICATE-----\n", is_default=True,
                         ssh=SshAccess(user="admin", port=2222, known_hosts=KNOWN_HOSTS, trust_on_first_use=True,
                                       addresses={"pve1": "10.0.0.1"}, connect_timeout=3.5),
                         created_at=T0, updated_at=T1), agent.host_to_pb, remote.host_from_pb),
    ("host, password", Host(id="h2", name="b", url="https://b:8006", auth="password", user="root@pam",
                            created_at=T0, updated_at=T0), agent.host_to_pb, remote.host_from_pb),
    ("node", Node(host_id="h1", name="pve1", status="online", cpus=8, maxmem=2**34, mem=2**30, maxdisk=2**40,
                  disk=2**35, pve_version="8.2.4", last_seen_at=T0), agent.node_to_pb, remote.node_from_pb),
    ("node, bare", Node(host_id="h1", name="pve2"), agent.node_to_pb, remote.node_from_pb),
    ("host check", HostCheck(host_id="h1", name="lab", ok=True, version="8.2", nodes=["a", "b"], online_nodes=["a"],
                             elapsed_ms=12.5, requests=2), agent.host_check_to_pb, remote.host_check_from_pb),
    ("host check, failed", HostCheck(host_id="h1", name="lab", ok=False, elapsed_ms=1.0, requests=1, error="no",
                                     error_kind="UnreachableError"), agent.host_check_to_pb, remote.host_check_from_pb),
    ("host check, lacking privileges", HostCheck(
        host_id="h1", name="lab", ok=False, elapsed_ms=1.0, requests=9, error="lacks 2",
        error_kind="PermissionDeniedError",
        missing_privileges=[PrivilegeGap(privilege="VM.Backup", path="/vms", used_for="vzdump"),
                            PrivilegeGap(privilege="SDN.Use", path="/sdn/zones/localnetwork/vmbr0", used_for="net")]),
     agent.host_check_to_pb, remote.host_check_from_pb),
    ("storage", StorageStatus(storage="local", type="dir", content="backup,iso,vztmpl", active=True, enabled=True,
                              shared=False, total=100, used=40, avail=60), agent.storage_to_pb, remote.storage_from_pb),
    ("storage, bare", StorageStatus(storage="nas", type="nfs"), agent.storage_to_pb, remote.storage_from_pb),
    ("reconcile report", ReconcileReport(
        started_at=T0, elapsed_ms=33.3,
        hosts=[HostReconcile(host_id="h1", host="lab", reachable=True, requests=1, containers=3, apps=2, updated=1,
                             skipped_busy=1, unknown=1, elapsed_ms=10.0),
               HostReconcile(host_id="h2", host="b", reachable=False, error="down", error_kind="UnreachableError")],
        changes=[AppChange(app_id="a1", hostname="web1", host_id="h1", vmid=101, status_before=AppStatus.RUNNING,
                           status_after=AppStatus.STOPPED, node_before="pve1", node_after="pve2"),
                 AppChange(app_id="a2", hostname="web2", host_id="h1", vmid=102, status_before=AppStatus.RUNNING,
                           status_after=AppStatus.VANISHED)]),
     agent.reconcile_report_to_pb, remote.reconcile_report_from_pb),
    ("janitor report", JanitorReport(
        started_at=T0, elapsed_ms=5.0, failed=["o1"], asked_to_stop=["o2"], resumed=["o3", "o4"], errors=["e"],
        retired_destroyed=[RetiredDestroyed(app_id="a1", gone=True, container=RetiredContainer(
            host_id="h1", node="pve1", vmid=150, hostname="web1", until=T1))]),
     agent.janitor_report_to_pb, remote.janitor_report_from_pb),
    ("node sync report", NodeSyncReport(hosts=[
        HostNodeSync(host_id="h1", host="lab", ok=True, nodes=["pve1", "pve2"], online=["pve1"]),
        HostNodeSync(host_id="h2", host="b", ok=False, error="x", error_kind="TLSError")]),
     agent.node_sync_report_to_pb, remote.node_sync_report_from_pb),
    ("settings, default", Settings(), agent.settings_to_pb, remote.settings_from_pb),
    ("settings, everything", Settings(
        default_cores=4, default_memory_mb=4096, default_swap_mb=0, default_disk_gb=20, rootfs_storage="fast",
        template_storage="nas", default_template="debian-12-standard", memory_overcommit=1.5, unprivileged=False,
        ssh_public_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me"],
        timezone="Europe/Paris", bridge="vmbr1", ip_mode="static", ip_pool="10.0.0.10-10.0.0.20",
        ip_subnet="10.0.0.0/24", gateway="10.0.0.1", dns_servers=["1.1.1.1"], vlan_tag=12, restore_grace_hours=2.5,
        operation_lease_seconds=30, health_timeout_seconds=60, vmid_min=1000, vmid_max=2000),
     agent.settings_to_pb, remote.settings_from_pb),
    *[(f"backup {s.value}", Backup(
        id="b1", app_id="a1", hostname="web1", status=s, mode=mode, compression=compression, target="nas",
        host_id="h1", node="pve1", vmid=101, storage="local", volid="local:backup/x.tar.zst", size_bytes=10**9,
        note="n", error="e", schedule_id="s1", location="/mnt/x", duration_seconds=12.5, created_at=T0,
        completed_at=T1), agent_backups.backup_to_pb, remote.backup_from_pb)
      for s, mode, compression in zip(BackupStatus, ("snapshot", "suspend", "stop", "snapshot", "stop"),
                                      ("zstd", "gzip", "lzo", "none", "zstd"), strict=True)],
    ("backup, bare", Backup(id="b2", app_id=None, hostname="gone", status=BackupStatus.FAILED, created_at=T0),
     agent_backups.backup_to_pb, remote.backup_from_pb),
    ("backup stats", BackupStats(total=3, by_status={BackupStatus.COMPLETED: 2, BackupStatus.FAILED: 1},
                                 completed_size_bytes=300, average_size_bytes=150),
     agent_backups.backup_stats_to_pb, remote.backup_stats_from_pb),
    ("backup stats, empty", BackupStats(total=0, by_status={}, completed_size_bytes=0),
     agent_backups.backup_stats_to_pb, remote.backup_stats_from_pb),
    ("schedule", BackupSchedule(id="s1", app_id="a1", cron="0 3 * * *", keep_last=7, keep_daily=3, keep_weekly=2,
                                target="nas", enabled=False, last_run_at=T0, next_run_at=T1, created_at=T0),
     agent_backups.backup_schedule_to_pb, remote.backup_schedule_from_pb),
    ("schedule, bare", BackupSchedule(id="s2", app_id="a1", cron="* * * * *", created_at=T0),
     agent_backups.backup_schedule_to_pb, remote.backup_schedule_from_pb),
    ("target", BackupTarget(id="t1", name="nas", kind="proxmox", created_at=T0),
     agent_backups.backup_target_to_pb, remote.backup_target_from_pb),
]


@pytest.mark.parametrize(("model", "to_pb", "from_pb"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_model_to_pb_to_model(model: BaseModel, to_pb: Callable[[Any], Any], from_pb: Callable[[Any], Any]) -> None:
    message = to_pb(model)
    wire = type(message).FromString(message.SerializeToString())
    back = from_pb(wire)
    assert type(back) is type(model)
    if isinstance(model, AppCredentials) and isinstance(back, AppCredentials):  # SecretStr: compare the values
        assert back.model_dump(mode="json") == model.model_dump(mode="json")
        assert {k: v.get_secret_value() for k, v in back.secrets.items()} == \
            {k: v.get_secret_value() for k, v in model.secrets.items()}
        assert (back.root_password and back.root_password.get_secret_value()) == \
            (model.root_password and model.root_password.get_secret_value())
    else:
        assert back == model


def test_every_response_conversion_of_the_agent_is_covered() -> None:
    covered = {c[2].__name__ for c in CASES}
    # users and tokens are the agent's own administration (UserService), not part of Proximity's API
    not_sdk = {"user_to_pb", "token_to_pb"}
    offered = {n for n in (*agent.__all__, *agent_backups.__all__) if n.endswith("_to_pb")} - not_sdk
    assert offered == covered, f"not round-tripped: {sorted(offered - covered)}"


def test_a_hosts_ssh_key_path_stays_on_the_agent() -> None:
    # Known difference: the key (a path or contents on the agent) never comes back; known_hosts as
    # a path on the agent's machine means nothing to a client either.
    host = Host(id="h", name="lab", url="https://pve:8006", auth="token", token_id="root@pam!px", created_at=T0,
                updated_at=T0, ssh=SshAccess(key_file="/root/.ssh/id_ed25519", known_hosts="/root/.ssh/known_hosts"))
    back = remote.host_from_pb(agent.host_to_pb(host))
    assert back.ssh == SshAccess()
    assert back.model_copy(update={"ssh": host.ssh}) == host


# -- requests: the remote SDK's arguments -> pb -> the agent's reading of them ----------------------


def test_resources_request() -> None:
    for resources in (Resources(), Resources(cores=1, memory_mb=16, swap_mb=0, disk_gb=1)):
        assert agent.resources_from_pb(remote.resources_to_pb(resources)) == resources


def test_host_spec_reads_files_here_and_sends_contents(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n")
    known = tmp_path / "known_hosts"
    known.write_text(KNOWN_HOSTS)
    ssh = SshAccess(user="admin", port=2200, key_file=str(key), known_hosts=str(known), addresses={"pve1": "10.0.0.1"},
                    connect_timeout=4.0)
    fields = dict(name="lab", url="https://pve:8006", token_id="root@pam!px", token_secret=SecretStr("s3"),
                  user=None, password=None, verify_tls=False, ca_pem="-----BEGIN CERTIFICATE-----\n", ssh=ssh)
    spec = remote.host_spec_to_pb(fields)
    read = agent.host_spec_fields(type(spec).FromString(spec.SerializeToString()))
    assert read == {**fields, "token_secret": "s3", "ssh": ssh.model_copy(update={
        "key_file": key.read_text(), "known_hosts": KNOWN_HOSTS})}

    mask = FieldMask(paths=["url", "ssh", "ca_pem"])
    update = agent.host_update_fields(remote.host_spec_to_pb({"url": "https://other:8006", "ssh": None,
                                                              "ca_pem": None}), mask)
    assert update == {"url": "https://other:8006", "ssh": None, "ca_pem": None}

    with pytest.raises(ValidationError) as missing:
        remote.host_spec_to_pb({"ssh": SshAccess(key_file=str(tmp_path / "nope"))})
    assert missing.value.field == "ssh.key_file"
    with pytest.raises(ValidationError) as unknown:
        remote.host_spec_to_pb({"colour": "blue"})
    assert unknown.value.field == "colour"


def test_settings_update_request() -> None:
    fields = {"default_cores": 3, "ip_mode": "static", "dns_servers": ["9.9.9.9"], "timezone": None,
              "vlan_tag": 7, "memory_overcommit": 1.25, "unprivileged": False}
    message, paths = remote.settings_to_pb(fields)
    assert agent.settings_update_fields(message, FieldMask(paths=paths)) == fields
    _, unchanged = remote.settings_to_pb({"default_cores": None})
    assert unchanged == []  # None leaves a required setting as it is
    with pytest.raises(ValidationError) as wrong:
        remote.settings_to_pb({"default_cores": "many"})
    assert wrong.value.field == "default_cores"
    with pytest.raises(ValidationError) as unknown:
        remote.settings_to_pb({"colour": "blue"})
    assert unknown.value.field == "colour"
