"""The authorization matrix: every RPC of the contract, called by an admin, the member who owns
the resources at stake, another member, a caller without a token and one with a revoked token.

Rules (auth.POLICY): ``admin`` RPCs refuse members with PERMISSION_DENIED; ``owner`` RPCs act on
the member's own app/operation/user/token and answer another member NOT_FOUND (as if it did not
exist); ``user`` RPCs serve every authenticated caller. No token or a revoked one:
UNAUTHENTICATED, always. An allowed call answers one of its row's ``ok`` codes (a state-changing
call may meet the operation of the previous role's call: ABORTED). Nothing is ever UNKNOWN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.field_mask_pb2 import FieldMask

from proximity_agent.auth import Access, policy_for
from proximity_agent.servicers import SERVICE_NAMES
from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    apps_pb2_grpc,
    backups_pb2,
    catalog_pb2,
    common_pb2,
    hosts_pb2,
    maintenance_pb2,
    operations_pb2,
    settings_pb2,
    users_pb2,
)
from tests.agent._rpc import succeeded
from tests.agent.conftest import Agent
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve

C = grpc.StatusCode
ROLES = ("none", "revoked", "other", "member", "admin")  # denials first: allowed calls change state
MODULES = (apps_pb2, backups_pb2, catalog_pb2, hosts_pb2, maintenance_pb2, operations_pb2, settings_pb2, users_pb2)


@dataclass
class World:
    """What the requests name: the member's app and operation, a spare host, a spare user."""

    agent: Agent
    pve: HarnessPve
    app_id: str = ""
    op_id: str = ""
    spare_user: str = ""
    backups: dict[str, str] = field(default_factory=dict)  # see _backup_world


Build = Callable[[str, World], Any]


@dataclass
class Row:
    access: str  # "admin" | "user" | "owner"
    build: Build | None = None  # None: the method's empty request
    ok: frozenset[grpc.StatusCode] = field(default_factory=lambda: frozenset({C.OK}))


def ok(*codes: grpc.StatusCode) -> frozenset[grpc.StatusCode]:
    return frozenset(codes)


BUSY = ok(C.OK, C.ABORTED)


def _backup_world(w: World) -> dict[str, str]:
    """Made once, when the first backup row is built (the matrix's own app is deleted by then):
    the member's running app, its backups and schedules, and two targets."""
    if not w.backups:
        px = w.agent.px
        app = px.apps.deploy("gitea", hostname="bk-m", owner_id=w.agent.member_id).wait(timeout=60)
        backups = [px.backups.create(app.id).wait(timeout=60) for _ in range(3)]
        schedules = [px.backups.schedule(app.id, cron="0 4 * * *") for _ in range(2)]
        px.backups.targets.add(name="shared", kind="proxmox", options={"storage": "local"})
        px.backups.targets.add(name="spare-target", kind="proxmox")
        w.backups.update(
            {
                "app": app.id,
                "backup": backups[0].id,
                "doomed-member": backups[1].id,
                "doomed-admin": backups[2].id,
                "schedule-member": schedules[0].id,
                "schedule-admin": schedules[1].id,
                "target": "shared",
                "spare-target": "spare-target",
            }
        )
    return w.backups


def _bk(role: str, w: World, name: str, *, settle: bool = False) -> str:
    world = _backup_world(w)
    if settle:  # the previous call's operation on the app (either role's) has ended
        _idle(w.agent, world["app"])
    return world[name]


def _member_token(role: str, w: World) -> users_pb2.RevokeTokenRequest:
    record, _ = w.agent.px.store.users.issue_token(w.agent.member_id, name=f"throwaway-{role}")
    return users_pb2.RevokeTokenRequest(token_id=record.id)


MATRIX: dict[str, Row] = {
    # catalog
    "CatalogService/ListCatalogApps": Row("user"),
    "CatalogService/GetCatalogApp": Row("user", lambda r, w: catalog_pb2.GetCatalogAppRequest(catalog_app_id="gitea")),
    "CatalogService/ListCatalogCategories": Row("user"),
    "CatalogService/GetCatalogStats": Row("user"),
    "CatalogService/ReloadCatalog": Row("admin"),
    "CatalogService/SearchCatalogApps": Row("user", lambda r, w: catalog_pb2.SearchCatalogAppsRequest(query="git")),
    "CatalogService/ListCatalogProblems": Row("user"),
    "CatalogService/ListCatalogShadowings": Row("user"),
    # hosts: admin only
    "HostService/CreateHost": Row(
        "admin",
        lambda r, w: hosts_pb2.CreateHostRequest(
            check=False,
            spec=hosts_pb2.HostSpec(name=f"h-{r}", url=w.pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET),
        ),
    ),
    "HostService/GetHost": Row("admin", lambda r, w: hosts_pb2.GetHostRequest(host="lab")),
    "HostService/ListHosts": Row("admin"),
    "HostService/UpdateHost": Row(
        "admin",
        lambda r, w: hosts_pb2.UpdateHostRequest(
            host="spare", spec=hosts_pb2.HostSpec(verify_tls=True), update_mask=FieldMask(paths=["verify_tls"])
        ),
    ),
    "HostService/DeleteHost": Row("admin", lambda r, w: hosts_pb2.DeleteHostRequest(host="spare")),
    "HostService/SetDefaultHost": Row("admin", lambda r, w: hosts_pb2.SetDefaultHostRequest(host="lab")),
    "HostService/TestHost": Row("admin", lambda r, w: hosts_pb2.TestHostRequest(host="lab")),
    "HostService/SyncNodes": Row("admin", lambda r, w: hosts_pb2.SyncNodesRequest(host="lab")),
    # nodes
    "NodeService/ListNodes": Row("user"),
    "NodeService/GetNode": Row("user", lambda r, w: hosts_pb2.GetNodeRequest(host="lab", node="pve1")),
    "NodeService/ListStorages": Row("user", lambda r, w: hosts_pb2.ListStoragesRequest(node="pve1")),
    # apps: the member's app "git-m"
    "AppService/DeployApp": Row("user", lambda r, w: apps_pb2.DeployAppRequest(catalog_id="gitea", hostname=f"d-{r}")),
    # a node on PVE "fake" (no 9.1): refused once the caller may deploy at all
    "AppService/DeployImage": Row(
        "user",
        lambda r, w: apps_pb2.DeployImageRequest(reference="nginx:1.27", hostname=f"i-{r}", node="pve1"),
        ok(C.FAILED_PRECONDITION, C.INVALID_ARGUMENT),
    ),
    "AppService/GetApp": Row("owner", lambda r, w: apps_pb2.GetAppRequest(app_id=w.app_id)),
    "AppService/ListApps": Row("user"),
    "AppService/GetAppLogs": Row("owner", lambda r, w: apps_pb2.GetAppLogsRequest(app_id=w.app_id)),
    "AppService/GetAppCredentials": Row("owner", lambda r, w: apps_pb2.GetAppCredentialsRequest(app_id=w.app_id)),
    "AppService/StartApp": Row("owner", lambda r, w: apps_pb2.StartAppRequest(app_id=w.app_id), BUSY),
    "AppService/StopApp": Row("owner", lambda r, w: apps_pb2.StopAppRequest(app_id=w.app_id), BUSY),
    "AppService/RestartApp": Row("owner", lambda r, w: apps_pb2.RestartAppRequest(app_id=w.app_id), BUSY),
    "AppService/CheckAppUpdates": Row(
        "owner", lambda r, w: apps_pb2.CheckAppUpdatesRequest(app_id=w.app_id, pull=False)
    ),
    # no such catalog version (or the app is not running, or busy): refused, but only once the caller
    # may reach the app
    "AppService/UpdateApp": Row(
        "owner",
        lambda r, w: apps_pb2.UpdateAppRequest(app_id=w.app_id, version="0.0.0"),
        ok(C.INVALID_ARGUMENT, C.FAILED_PRECONDITION, C.ABORTED),
    ),
    "AppService/SetAppUpdateWindow": Row(
        "owner",
        lambda r, w: apps_pb2.SetAppUpdateWindowRequest(app_id=w.app_id, window=apps_pb2.UpdateWindow(start="03:00")),
    ),
    "AppService/GetAppUpdateWindow": Row("owner", lambda r, w: apps_pb2.GetAppUpdateWindowRequest(app_id=w.app_id)),
    "AppService/RunDueAppUpdates": Row("admin"),
    "AppService/ResizeApp": Row(
        "owner",
        lambda r, w: apps_pb2.ResizeAppRequest(app_id=w.app_id, resources=common_pb2.Resources(memory_mb=1024)),
        BUSY,
    ),
    # already on pve1: refused as invalid, but only once the caller may reach the app
    "AppService/MigrateApp": Row(
        "owner", lambda r, w: apps_pb2.MigrateAppRequest(app_id=w.app_id, node="pve1"), ok(C.INVALID_ARGUMENT)
    ),
    "AppService/CloneApp": Row(
        "owner", lambda r, w: apps_pb2.CloneAppRequest(app_id=w.app_id, hostname=f"c-{r}"), BUSY
    ),
    "AppService/DiscoverApps": Row("admin", lambda r, w: apps_pb2.DiscoverAppsRequest(host="lab")),
    "AppService/AdoptApp": Row("admin", lambda r, w: apps_pb2.AdoptAppRequest(vmid=4242, node="pve1"), ok(C.NOT_FOUND)),
    "AppService/DeleteApp": Row("owner", lambda r, w: apps_pb2.DeleteAppRequest(app_id=w.app_id), BUSY),
    # operations: the member's deploy
    "OperationService/GetOperation": Row(
        "owner", lambda r, w: operations_pb2.GetOperationRequest(operation_id=w.op_id)
    ),
    "OperationService/ListOperations": Row("user"),
    "OperationService/CancelOperation": Row(
        "owner", lambda r, w: operations_pb2.CancelOperationRequest(operation_id=w.op_id)
    ),
    "OperationService/WatchOperation": Row(
        "owner", lambda r, w: operations_pb2.WatchOperationRequest(operation_id=w.op_id)
    ),
    # settings: admin only
    "SettingsService/GetSettings": Row("admin"),
    "SettingsService/UpdateSettings": Row(
        "admin",
        lambda r, w: settings_pb2.UpdateSettingsRequest(
            settings=settings_pb2.Settings(default_cores=2), update_mask=FieldMask(paths=["default_cores"])
        ),
    ),
    # users and tokens
    "UserService/CreateUser": Row(
        "admin", lambda r, w: users_pb2.CreateUserRequest(name=f"u-{r}", role=users_pb2.ROLE_MEMBER)
    ),
    "UserService/GetUser": Row("owner", lambda r, w: users_pb2.GetUserRequest(user_id=w.agent.member_id)),
    "UserService/GetCurrentUser": Row("user"),
    "UserService/ListUsers": Row("admin"),
    "UserService/UpdateUser": Row(
        "admin",
        lambda r, w: users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=w.spare_user, disabled=False), update_mask=FieldMask(paths=["disabled"])
        ),
    ),
    "UserService/CreateToken": Row("user", lambda r, w: users_pb2.CreateTokenRequest(name=f"t-{r}")),
    "UserService/ListTokens": Row("user"),
    "UserService/RevokeToken": Row("owner", _member_token),
    # backups: the member's app "bk-m", its backups and schedules (_backup_world); a state-changing
    # call comes once the previous call's operation on the app has ended
    "BackupService/CreateBackup": Row(
        "owner", lambda r, w: backups_pb2.CreateBackupRequest(app_id=_bk(r, w, "app", settle=True))
    ),
    "BackupService/ListBackups": Row("owner", lambda r, w: backups_pb2.ListBackupsRequest(app_id=_bk(r, w, "app"))),
    "BackupService/GetBackup": Row("owner", lambda r, w: backups_pb2.GetBackupRequest(backup_id=_bk(r, w, "backup"))),
    "BackupService/GetBackupStats": Row(
        "owner", lambda r, w: backups_pb2.GetBackupStatsRequest(app_id=_bk(r, w, "app"))
    ),
    "BackupService/RestoreBackup": Row(
        "owner", lambda r, w: backups_pb2.RestoreBackupRequest(backup_id=_bk(r, w, "backup", settle=True))
    ),
    "BackupService/DeleteBackup": Row(
        "owner",
        lambda r, w: backups_pb2.DeleteBackupRequest(
            backup_id=_bk(r, w, "doomed-admin" if r == "admin" else "doomed-member", settle=True)
        ),
    ),
    "BackupService/CreateBackupSchedule": Row(
        "owner", lambda r, w: backups_pb2.CreateBackupScheduleRequest(app_id=_bk(r, w, "app"), cron="0 3 * * *")
    ),
    "BackupService/ListBackupSchedules": Row(
        "owner", lambda r, w: backups_pb2.ListBackupSchedulesRequest(app_id=_bk(r, w, "app"))
    ),
    "BackupService/DeleteBackupSchedule": Row(
        "owner",
        lambda r, w: backups_pb2.DeleteBackupScheduleRequest(
            schedule_id=_bk(r, w, "schedule-admin" if r == "admin" else "schedule-member")
        ),
    ),
    "BackupService/RunDueBackups": Row("admin"),
    "BackupService/CreateBackupTarget": Row(
        "admin",
        lambda r, w: backups_pb2.CreateBackupTargetRequest(
            name=f"t-{r}", kind="proxmox", options_json='{"storage": "local"}'
        ),
    ),
    "BackupService/GetBackupTarget": Row(
        "user", lambda r, w: backups_pb2.GetBackupTargetRequest(name=_bk(r, w, "target"))
    ),
    "BackupService/ListBackupTargets": Row("user"),
    "BackupService/ListBackupTargetKinds": Row("user"),
    "BackupService/DeleteBackupTarget": Row(
        "admin", lambda r, w: backups_pb2.DeleteBackupTargetRequest(name=_bk(r, w, "spare-target"))
    ),
    **{f"MaintenanceService/{m}": Row("admin") for m in ("Reconcile", "RunJanitor", "RunNodeSync")},
}


def _methods() -> dict[str, Any]:
    """Every RPC of the contract: "Service/Method" -> its descriptor."""
    found = {}
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[f"{service.name}/{method.name}"] = method
    return found


def expected(row: Row, role: str) -> frozenset[grpc.StatusCode]:
    if role in ("none", "revoked"):
        return ok(C.UNAUTHENTICATED)
    if role == "admin":
        return row.ok
    if row.access == "admin":
        return ok(C.PERMISSION_DENIED)
    if row.access == "owner" and role == "other":
        return ok(C.NOT_FOUND)
    return row.ok


def test_the_matrix_covers_every_rpc_and_agrees_with_the_policy() -> None:
    methods = _methods()
    assert set(MATRIX) == set(methods)
    assert {name.split("/")[0] for name in methods} == {s.rsplit(".", 1)[1] for s in SERVICE_NAMES}
    for name, row in MATRIX.items():
        access = policy_for(f"/proximity.v1.{name}")
        assert access == (Access.ADMIN if row.access == "admin" else Access.USER), name


def _call(channel: grpc.Channel, name: str, method: Any, request: Any) -> grpc.StatusCode:
    path = f"/proximity.v1.{name}"
    output = message_factory.GetMessageClass(method.output_type)
    try:
        if method.server_streaming:
            stream = channel.unary_stream(
                path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=output.FromString
            )
            list(stream(request, timeout=60))
        else:
            unary = channel.unary_unary(
                path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=output.FromString
            )
            unary(request, timeout=60)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return C.OK


def _idle(agent: Agent, app_id: str) -> None:
    deadline = time.monotonic() + 60
    while agent.px.store.operations.active_for(app_id=app_id) is not None:
        assert time.monotonic() < deadline, "the app stayed busy"
        time.sleep(0.05)


def test_authorization_matrix(agent: Agent, pve: HarnessPve) -> None:
    world = World(agent=agent, pve=pve)
    users = agent.px.store.users
    _, revoked = users.issue_token(agent.member_id, name="gone")
    users.revoke_token(next(t.id for t in users.tokens(agent.member_id) if t.name == "gone"))
    world.spare_user = users.create("zed").id
    agent.px.hosts.add("spare", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, check=False)
    deploy = (
        agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
        .DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="git-m"))
        .operation
    )
    succeeded(agent, agent.member, deploy.id)
    world.app_id, world.op_id = deploy.app_id, deploy.id

    channels = {
        "none": agent.channel(None),
        "revoked": agent.channel(revoked),
        "other": agent.channel(agent.other),
        "member": agent.channel(agent.member),
        "admin": agent.channel(agent.admin),
    }
    methods = _methods()
    failures: list[str] = []
    calls = 0
    for name, row in MATRIX.items():
        method = methods[name]
        for role in ROLES:
            request = (
                row.build(role, world)
                if row.build is not None
                else message_factory.GetMessageClass(method.input_type)()
            )
            code = _call(channels[role], name, method, request)
            calls += 1
            wanted = expected(row, role)
            if code not in wanted or code == C.UNKNOWN:
                failures.append(f"{name} as {role}: {code.name}, expected {sorted(c.name for c in wanted)}")
        _idle(agent, world.app_id)
    assert not failures, "\n".join(failures)
    assert calls == len(MATRIX) * len(ROLES)
    # the allowed state changes happened, by the right hands
    assert {u.name for u in users.list()} >= {"u-admin"} and "u-member" not in {u.name for u in users.list()}
    assert {h.name for h in agent.px.hosts.list()} == {"lab", "h-admin"}  # spare deleted by the admin
    backups = world.backups
    _idle(agent, backups["app"])
    assert {t.name for t in agent.px.backups.targets.list()} == {"shared", "t-admin"}
    assert {s.id for s in agent.px.backups.schedules(backups["app"])}.isdisjoint(
        {backups["schedule-member"], backups["schedule-admin"]}
    )
    deadline = time.monotonic() + 60
    while agent.px.backups.list(status="deleting"):  # backup-delete operations belong to no app
        assert time.monotonic() < deadline, "the backups stayed in deletion"
        time.sleep(0.05)
    kept = {b.id for b in agent.px.backups.list(backups["app"])}
    assert backups["backup"] in kept and len(kept) == 3  # 3 made - 2 deleted + 1 by member + 1 by admin
