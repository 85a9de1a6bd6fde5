"""Every served RPC through a real channel to the in-process agent: what it answers, and which
status code each kind of failure gets (never UNKNOWN)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import pydantic
import pytest
import trustme
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proximity_agent.auth import bootstrap_admin_token
from proximity_agent.server import ServerOptions
from proximity_agent.status import to_failure
from proximity_sdk import errors
from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    apps_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    hosts_pb2,
    hosts_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)
from tests.agent._rpc import code_of, finish, rpc_error, succeeded, trailing
from tests.agent.conftest import Agent, ServerThread
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve

C = grpc.StatusCode


# -- catalog ---------------------------------------------------------------------------------------


def test_catalog_reads_page_through_everything(agent: Agent) -> None:
    cat = agent.stub(catalog_pb2_grpc.CatalogServiceStub, agent.member)
    expected = sorted(a.id for a in agent.px.catalog.list())
    seen: list[str] = []
    token = ""
    while True:
        page = cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(page_size=7, page_token=token))
        assert len(page.apps) <= 7
        seen += [a.id for a in page.apps]
        token = page.next_page_token
        if not token:
            break
    assert seen == expected  # sorted by id, nothing repeated or skipped
    assert len(cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest()).apps) == min(50, len(expected))

    gitea = cat.GetCatalogApp(catalog_pb2.GetCatalogAppRequest(catalog_app_id="gitea")).app
    assert (gitea.id, gitea.main_port, gitea.category) == ("gitea", 3000, agent.px.catalog.get("gitea").category)
    assert "services" in json.loads(gitea.docker_compose_json)

    by_category = cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(category=gitea.category, page_size=1000))
    assert {a.category for a in by_category.apps} == {gitea.category} and "gitea" in [a.id for a in by_category.apps]
    found = cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(query="gitea")).apps
    assert "gitea" in [a.id for a in found]

    categories = cat.ListCatalogCategories(catalog_pb2.ListCatalogCategoriesRequest(page_size=1000)).categories
    assert list(categories) == agent.px.catalog.categories()
    stats = cat.GetCatalogStats(catalog_pb2.GetCatalogStatsRequest()).stats
    assert stats.total_apps == len(expected) and sum(stats.by_category.values()) == len(expected)
    admin = agent.stub(catalog_pb2_grpc.CatalogServiceStub, agent.admin)
    reloaded = admin.ReloadCatalog(catalog_pb2.ReloadCatalogRequest())
    assert reloaded.stats == stats and list(reloaded.problems) == []

    missing = rpc_error(lambda: cat.GetCatalogApp(catalog_pb2.GetCatalogAppRequest(catalog_app_id="gittea")))
    assert missing.code() == C.NOT_FOUND and "gitea" in missing.details()  # the hint names the close match
    assert trailing(missing)["proximity-error-kind"] == "NotFoundError"


def test_page_tokens_and_sizes_are_checked(agent: Agent) -> None:
    cat = agent.stub(catalog_pb2_grpc.CatalogServiceStub, agent.member)
    first = cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(page_size=3))
    for bad in ("garbage!", "eyJvIjotMX0", first.next_page_token[:-3]):
        error = rpc_error(lambda bad=bad: cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(page_token=bad)))
        assert error.code() == C.INVALID_ARGUMENT, bad
        assert trailing(error)["proximity-error-field"] == "page_token"
    # a token of one query is refused by another
    other_query = rpc_error(
        lambda: cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(query="git", page_token=first.next_page_token))
    )
    assert other_query.code() == C.INVALID_ARGUMENT and "another query" in other_query.details()
    assert code_of(lambda: cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(page_size=-1))) == C.INVALID_ARGUMENT
    huge = cat.ListCatalogApps(catalog_pb2.ListCatalogAppsRequest(page_size=1_000_000))
    assert len(huge.apps) == len(agent.px.catalog.list()) and huge.next_page_token == ""


# -- hosts, nodes ------------------------------------------------------------------------------------


def test_hosts_and_nodes(agent: Agent, pve: HarnessPve, pve_ca: str) -> None:
    hosts = agent.stub(hosts_pb2_grpc.HostServiceStub, agent.admin)
    nodes = agent.stub(hosts_pb2_grpc.NodeServiceStub, agent.member)
    [lab] = hosts.ListHosts(hosts_pb2.ListHostsRequest()).hosts
    assert (lab.name, lab.is_default, lab.auth, lab.token_id) == ("lab", True, hosts_pb2.HOST_AUTH_TOKEN, TOKEN_ID)
    assert lab.ssh.private_key_set and lab.ssh.user == "root"
    assert hosts.GetHost(hosts_pb2.GetHostRequest(host="lab")).host == lab

    ca_pem = Path(pve_ca).read_text()
    spec = hosts_pb2.HostSpec(name="lab2", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_pem=ca_pem)
    created = hosts.CreateHost(hosts_pb2.CreateHostRequest(spec=spec))
    assert created.host.name == "lab2" and not created.host.is_default
    assert TOKEN_SECRET.encode() not in created.SerializeToString()  # write-only
    listed = hosts.ListHosts(hosts_pb2.ListHostsRequest())
    assert TOKEN_SECRET.encode() not in listed.SerializeToString() and len(listed.hosts) == 2
    assert code_of(lambda: hosts.CreateHost(hosts_pb2.CreateHostRequest(spec=spec))) == C.ALREADY_EXISTS

    # Proxmox refusing a host's credentials is the host's problem, not the caller's token
    wrong = hosts_pb2.HostSpec(name="lab3", url=pve.url, token_id=TOKEN_ID, token_secret="nope", ca_pem=ca_pem)
    refused = rpc_error(lambda: hosts.CreateHost(hosts_pb2.CreateHostRequest(spec=wrong)))
    assert refused.code() == C.FAILED_PRECONDITION and "Proxmox host refused" in refused.details()
    unchecked = hosts.CreateHost(hosts_pb2.CreateHostRequest(spec=wrong, check=False)).host
    check = hosts.TestHost(hosts_pb2.TestHostRequest(host=unchecked.id)).check
    assert (check.ok, check.error_kind) == (False, "AuthenticationError")  # the answer, not an error
    hosts.DeleteHost(hosts_pb2.DeleteHostRequest(host="lab3"))

    # files are the client's: the agent takes key *contents*, never a path on its own disk
    leaky = hosts_pb2.HostSpec(
        name="lab4",
        url=pve.url,
        token_id=TOKEN_ID,
        token_secret=TOKEN_SECRET,
        ssh=hosts_pb2.SshAccess(private_key="/root/.ssh/id_ed25519"),
    )
    bad_key = rpc_error(lambda: hosts.CreateHost(hosts_pb2.CreateHostRequest(spec=leaky, check=False)))
    assert bad_key.code() == C.INVALID_ARGUMENT and trailing(bad_key)["proximity-error-field"] == "spec.ssh.private_key"
    assert code_of(lambda: hosts.CreateHost(hosts_pb2.CreateHostRequest())) == C.INVALID_ARGUMENT

    updated = hosts.UpdateHost(
        hosts_pb2.UpdateHostRequest(
            host="lab2", spec=hosts_pb2.HostSpec(verify_tls=True), update_mask=FieldMask(paths=["verify_tls", "ca_pem"])
        )
    )
    assert not updated.host.HasField("ca_pem")  # named and unset: cleared
    for mask in ([], ["nonsense"], ["token_secret"]):
        assert (
            code_of(
                lambda mask=mask: hosts.UpdateHost(
                    hosts_pb2.UpdateHostRequest(host="lab2", update_mask=FieldMask(paths=mask))
                )
            )
            == C.INVALID_ARGUMENT
        ), mask
    assert hosts.SetDefaultHost(hosts_pb2.SetDefaultHostRequest(host="lab2")).host.is_default
    assert hosts.SetDefaultHost(hosts_pb2.SetDefaultHostRequest(host="lab")).host.is_default
    assert hosts.TestHost(hosts_pb2.TestHostRequest(host="lab")).check.ok
    synced = hosts.SyncNodes(hosts_pb2.SyncNodesRequest(host="lab")).nodes
    assert [n.name for n in synced] == ["pve1"] and synced[0].status == "online"
    hosts.DeleteHost(hosts_pb2.DeleteHostRequest(host="lab2"))
    assert code_of(lambda: hosts.GetHost(hosts_pb2.GetHostRequest(host="lab2"))) == C.NOT_FOUND
    assert code_of(lambda: hosts.GetHost(hosts_pb2.GetHostRequest())) == C.INVALID_ARGUMENT

    listed_nodes = nodes.ListNodes(hosts_pb2.ListNodesRequest(host="lab")).nodes
    assert [n.name for n in listed_nodes] == ["pve1"] and listed_nodes[0].maxmem > 0
    assert nodes.GetNode(hosts_pb2.GetNodeRequest(host="lab", node="pve1")).node == listed_nodes[0]
    assert code_of(lambda: nodes.GetNode(hosts_pb2.GetNodeRequest(host="lab", node="pve9"))) == C.NOT_FOUND
    storages = nodes.ListStorages(hosts_pb2.ListStoragesRequest(node="pve1", content="rootdir")).storages
    assert storages and all("rootdir" in s.content for s in storages)
    assert code_of(lambda: nodes.ListStorages(hosts_pb2.ListStoragesRequest(node="bad name!"))) == C.INVALID_ARGUMENT


# -- settings, users ------------------------------------------------------------------------------


def test_settings(agent: Agent) -> None:
    settings = agent.stub(settings_pb2_grpc.SettingsServiceStub, agent.admin)
    current = settings.GetSettings(settings_pb2.GetSettingsRequest()).settings
    assert (current.default_cores, current.ip_mode, current.bridge) == (2, settings_pb2.IP_MODE_DHCP, "vmbr0")
    changed = settings.UpdateSettings(
        settings_pb2.UpdateSettingsRequest(
            settings=settings_pb2.Settings(default_cores=3, timezone="Europe/Rome", bridge="ignored0"),
            update_mask=FieldMask(paths=["default_cores", "timezone"]),
        )
    ).settings
    assert (changed.default_cores, changed.timezone, changed.bridge) == (3, "Europe/Rome", "vmbr0")
    assert agent.px.settings.get().default_cores == 3
    cleared = settings.UpdateSettings(settings_pb2.UpdateSettingsRequest(update_mask=FieldMask(paths=["timezone"])))
    assert not cleared.settings.HasField("timezone")
    for request in (
        settings_pb2.UpdateSettingsRequest(),  # empty mask
        settings_pb2.UpdateSettingsRequest(update_mask=FieldMask(paths=["secret_key"])),
        settings_pb2.UpdateSettingsRequest(
            settings=settings_pb2.Settings(ip_mode=settings_pb2.IP_MODE_STATIC),
            update_mask=FieldMask(paths=["ip_mode"]),
        ),  # no pool: invalid as a whole
        settings_pb2.UpdateSettingsRequest(update_mask=FieldMask(paths=["default_cores"])),  # 0 cores
    ):
        assert code_of(lambda request=request: settings.UpdateSettings(request)) == C.INVALID_ARGUMENT, request
    assert agent.px.settings.get().default_cores == 3  # nothing stored by a refused update


def test_users_and_tokens(agent: Agent) -> None:
    admin = agent.stub(users_pb2_grpc.UserServiceStub, agent.admin)
    member = agent.stub(users_pb2_grpc.UserServiceStub, agent.member)
    carol = admin.CreateUser(users_pb2.CreateUserRequest(name="carol", role=users_pb2.ROLE_MEMBER)).user
    assert (carol.name, carol.role, carol.disabled) == ("carol", users_pb2.ROLE_MEMBER, False)
    assert (
        code_of(lambda: admin.CreateUser(users_pb2.CreateUserRequest(name="carol", role=users_pb2.ROLE_ADMIN)))
        == C.ALREADY_EXISTS
    )
    assert code_of(lambda: admin.CreateUser(users_pb2.CreateUserRequest(name="dave"))) == C.INVALID_ARGUMENT
    assert (
        code_of(lambda: admin.CreateUser(users_pb2.CreateUserRequest(name="no spaces", role=users_pb2.ROLE_ADMIN)))
        == C.INVALID_ARGUMENT
    )
    assert [u.name for u in admin.ListUsers(users_pb2.ListUsersRequest()).users] == [
        "alice",
        "bob",
        "carol",
        "root-admin",
    ]
    assert admin.GetUser(users_pb2.GetUserRequest(user_id=carol.id)).user == carol
    me = member.GetCurrentUser(users_pb2.GetCurrentUserRequest()).user
    assert (me.id, me.name) == (agent.member_id, "alice")
    assert member.GetUser(users_pb2.GetUserRequest(user_id=agent.member_id)).user == me

    # a token: its secret once, then only its record; it works at once, and stops at once
    created = admin.CreateToken(users_pb2.CreateTokenRequest(user_id=carol.id, name="ci"))
    assert created.secret.startswith("pxt_") and created.token.user_id == carol.id
    as_carol = agent.stub(users_pb2_grpc.UserServiceStub, created.secret)
    assert as_carol.GetCurrentUser(users_pb2.GetCurrentUserRequest()).user.id == carol.id
    listed = admin.ListTokens(users_pb2.ListTokensRequest(user_id=carol.id))
    assert [t.name for t in listed.tokens] == ["ci"] and created.secret.encode() not in listed.SerializeToString()

    renamed = admin.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=carol.id, name="caroline"), update_mask=FieldMask(paths=["name"])
        )
    ).user
    assert (renamed.name, renamed.role) == ("caroline", users_pb2.ROLE_MEMBER)
    admin.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=carol.id, disabled=True), update_mask=FieldMask(paths=["disabled"])
        )
    )
    assert code_of(lambda: as_carol.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.UNAUTHENTICATED
    admin.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=carol.id, disabled=False), update_mask=FieldMask(paths=["disabled"])
        )
    )
    assert code_of(lambda: as_carol.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.OK
    # the last enabled admin cannot be demoted or disabled
    last = rpc_error(
        lambda: admin.UpdateUser(
            users_pb2.UpdateUserRequest(
                user=users_pb2.User(id=agent.admin_id, role=users_pb2.ROLE_MEMBER),
                update_mask=FieldMask(paths=["role"]),
            )
        )
    )
    assert last.code() == C.FAILED_PRECONDITION and "last enabled admin" in last.details()
    assert (
        code_of(
            lambda: admin.UpdateUser(
                users_pb2.UpdateUserRequest(user=users_pb2.User(id=carol.id), update_mask=FieldMask(paths=["password"]))
            )
        )
        == C.INVALID_ARGUMENT
    )

    revoked = as_carol.RevokeToken(users_pb2.RevokeTokenRequest(token_id=created.token.id)).token
    assert revoked.id == created.token.id and revoked.HasField("revoked_at")
    assert code_of(lambda: as_carol.GetCurrentUser(users_pb2.GetCurrentUserRequest())) == C.UNAUTHENTICATED
    assert code_of(lambda: admin.RevokeToken(users_pb2.RevokeTokenRequest(token_id=created.token.id))) == C.NOT_FOUND

    own = member.CreateToken(users_pb2.CreateTokenRequest(name="laptop"))
    assert own.token.user_id == agent.member_id
    assert code_of(lambda: member.CreateToken(users_pb2.CreateTokenRequest(user_id=carol.id))) == C.PERMISSION_DENIED
    past = users_pb2.CreateTokenRequest(name="old")
    past.expires_at.FromSeconds(1_000_000)
    assert code_of(lambda: member.CreateToken(past)) == C.INVALID_ARGUMENT


def test_bad_authorization_metadata_is_unauthenticated(agent: Agent) -> None:
    channel = grpc.insecure_channel(agent.target)
    stub = users_pb2_grpc.UserServiceStub(channel)
    request = users_pb2.GetCurrentUserRequest()
    for metadata in (
        (),
        (("authorization", agent.admin),),
        (("authorization", "Basic eDp5"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer pxt_" + "x" * 600),),
        (("authorization", "Bearer pxt_unknown"),),
    ):
        error = rpc_error(lambda metadata=metadata: stub.GetCurrentUser(request, metadata=metadata))
        assert error.code() == C.UNAUTHENTICATED, metadata
        assert agent.admin not in error.details()
    ok = stub.GetCurrentUser(request, metadata=(("authorization", f"bearer  {agent.admin}"),))
    assert ok.user.role == users_pb2.ROLE_ADMIN
    channel.close()


# -- apps and operations --------------------------------------------------------------------------


def test_deploy_and_the_everyday_lifecycle(agent: Agent, pve: HarnessPve) -> None:
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    ops = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.member)
    deployed = apps.DeployApp(
        apps_pb2.DeployAppRequest(
            catalog_id="gitea",
            hostname="git-1",
            environment={"GITEA__server__DOMAIN": "git.example"},
            resources=common_pb2.Resources(memory_mb=1024),
        )
    )
    op = deployed.operation
    assert (op.kind, op.owner_id) == ("deploy", agent.member_id)
    assert op.status in (operations_pb2.OPERATION_STATUS_PENDING, operations_pb2.OPERATION_STATUS_RUNNING)
    # while it runs, a second action on the app is refused as busy
    busy = rpc_error(lambda: apps.StartApp(apps_pb2.StartAppRequest(app_id=op.app_id)))
    assert busy.code() == C.ABORTED and trailing(busy)["proximity-error-kind"] == "BusyError"
    final, events = finish(agent, agent.member, op.id)
    assert final.status == operations_pb2.OPERATION_STATUS_SUCCEEDED
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) and events[-1].message == "deploy succeeded"
    app = apps.GetApp(apps_pb2.GetAppRequest(app_id=op.app_id)).app
    assert (app.status, app.hostname, app.owner_id, app.resources.memory_mb) == (
        apps_pb2.APP_STATUS_RUNNING,
        "git-1",
        agent.member_id,
        1024,
    )
    assert app.url == f"http://{pve.lease_for(app.vmid)}:3000"
    assert {(p.service, p.port) for p in app.ports} == {("gitea", 3000), ("gitea", 2222)}
    assert json.loads(final.result_json)["app_id"] == app.id

    # refused deploys
    for request, code in (
        (apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="git-1"), C.ALREADY_EXISTS),
        (apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="-bad-"), C.INVALID_ARGUMENT),
        (apps_pb2.DeployAppRequest(catalog_id="no-such-app", hostname="x1"), C.NOT_FOUND),
        (
            apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="x2", resources=common_pb2.Resources(cores=0)),
            C.INVALID_ARGUMENT,
        ),
        (apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="x3", host="nowhere"), C.NOT_FOUND),
    ):
        assert code_of(lambda request=request: apps.DeployApp(request)) == code, request

    # lists: members see their own; admins see all and may filter by owner
    assert [a.id for a in apps.ListApps(apps_pb2.ListAppsRequest()).apps] == [app.id]
    running = apps.ListApps(apps_pb2.ListAppsRequest(status=apps_pb2.APP_STATUS_RUNNING, search="GIT", host="lab"))
    assert [a.id for a in running.apps] == [app.id]
    assert list(apps.ListApps(apps_pb2.ListAppsRequest(status=apps_pb2.APP_STATUS_STOPPED)).apps) == []
    other = agent.stub(apps_pb2_grpc.AppServiceStub, agent.other)
    assert list(other.ListApps(apps_pb2.ListAppsRequest()).apps) == []
    assert code_of(lambda: other.ListApps(apps_pb2.ListAppsRequest(owner_id=agent.member_id))) == C.PERMISSION_DENIED
    admin = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)
    assert [a.id for a in admin.ListApps(apps_pb2.ListAppsRequest(owner_id=agent.member_id)).apps] == [app.id]
    assert list(admin.ListApps(apps_pb2.ListAppsRequest(owner_id=agent.other_id)).apps) == []

    logs = apps.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app.id, tail=10))
    assert isinstance(logs.text, str)
    creds = apps.GetAppCredentials(apps_pb2.GetAppCredentialsRequest(app_id=app.id)).credentials
    assert creds.app_id == app.id and len(creds.root_password) >= 16
    assert code_of(lambda: apps.GetAppLogs(apps_pb2.GetAppLogsRequest(app_id=app.id, tail=-5))) == C.INVALID_ARGUMENT

    # the lifecycle, each action an Operation at once
    stopped = apps.StopApp(apps_pb2.StopAppRequest(app_id=app.id, timeout_seconds=30)).operation
    assert stopped.kind == "stop"
    succeeded(agent, agent.member, stopped.id)
    assert apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id)).app.status == apps_pb2.APP_STATUS_STOPPED
    assert pve.ct(app.vmid).status == "stopped"
    succeeded(agent, agent.member, apps.StartApp(apps_pb2.StartAppRequest(app_id=app.id)).operation.id)
    assert pve.ct(app.vmid).status == "running"
    succeeded(agent, agent.member, apps.RestartApp(apps_pb2.RestartAppRequest(app_id=app.id)).operation.id)
    resized = apps.ResizeApp(apps_pb2.ResizeAppRequest(app_id=app.id, resources=common_pb2.Resources(memory_mb=1536)))
    succeeded(agent, agent.member, resized.operation.id)
    assert pve.ct(app.vmid).config["memory"] == 1536
    assert (
        code_of(lambda: apps.StopApp(apps_pb2.StopAppRequest(app_id=app.id, timeout_seconds=99999)))
        == C.INVALID_ARGUMENT
    )

    # a host with apps cannot be removed: a state to change first
    hosts = agent.stub(hosts_pb2_grpc.HostServiceStub, agent.admin)
    refused = rpc_error(lambda: hosts.DeleteHost(hosts_pb2.DeleteHostRequest(host="lab")))
    assert refused.code() == C.FAILED_PRECONDITION and "still has 1 app" in refused.details()

    # operations: newest first, paged, the member's own
    listed = ops.ListOperations(operations_pb2.ListOperationsRequest(app_id=app.id, page_size=2))
    assert [o.kind for o in listed.operations] == ["resize", "restart"] and listed.next_page_token
    rest = ops.ListOperations(
        operations_pb2.ListOperationsRequest(app_id=app.id, page_size=2, page_token=listed.next_page_token)
    )
    assert [o.kind for o in rest.operations] == ["start", "stop"]
    done = ops.ListOperations(
        operations_pb2.ListOperationsRequest(status=operations_pb2.OPERATION_STATUS_SUCCEEDED, page_size=1000)
    ).operations
    assert len(done) == 5 and all(o.owner_id == agent.member_id for o in done)
    again = ops.CancelOperation(operations_pb2.CancelOperationRequest(operation_id=op.id)).operation
    assert again.status == operations_pb2.OPERATION_STATUS_SUCCEEDED and not again.cancel_requested
    assert code_of(lambda: ops.GetOperation(operations_pb2.GetOperationRequest(operation_id="nope"))) == C.NOT_FOUND
    assert code_of(lambda: ops.GetOperation(operations_pb2.GetOperationRequest())) == C.INVALID_ARGUMENT

    deleted = apps.DeleteApp(apps_pb2.DeleteAppRequest(app_id=app.id)).operation
    assert deleted.kind == "delete"
    succeeded(agent, agent.member, deleted.id)
    assert code_of(lambda: apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id))) == C.NOT_FOUND
    assert pve.ct(app.vmid) is None


def test_cancel_a_running_deploy(agent: Agent, standin_state) -> None:  # type: ignore[no-untyped-def]
    standin_state.script("docker", match="up", sleep=3.0)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    ops = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.member)
    op = apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="git-c")).operation
    asked = ops.CancelOperation(operations_pb2.CancelOperationRequest(operation_id=op.id)).operation
    assert asked.cancel_requested
    final, events = finish(agent, agent.member, op.id)
    assert final.status == operations_pb2.OPERATION_STATUS_CANCELLED
    assert any(e.message == "cancel requested" for e in events)


def test_clone_migrate_discover_adopt(agent: Agent, pve: HarnessPve, standin_state) -> None:  # type: ignore[no-untyped-def]
    # a clone's disk holds its source's files: the sandbox's clone copies the stand-in container
    pve.add_node("pve2")
    pve.add_ct(
        150,
        "legacy-wiki",
        node="pve1",
        status="running",
        config={"cores": 2, "memory": 1024, "net0": "name=eth0,bridge=vmbr0,ip=dhcp"},
    )
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    op = apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="git-1")).operation
    succeeded(agent, agent.member, op.id)
    cloned = apps.CloneApp(apps_pb2.CloneAppRequest(app_id=op.app_id, hostname="git-2")).operation
    new_id = succeeded(agent, agent.member, cloned.id)["app_id"]
    clone = apps.GetApp(apps_pb2.GetAppRequest(app_id=new_id)).app
    assert (clone.hostname, clone.owner_id, clone.status) == ("git-2", agent.member_id, apps_pb2.APP_STATUS_RUNNING)
    here = apps.GetApp(apps_pb2.GetAppRequest(app_id=op.app_id)).app.node
    there = "pve1" if here == "pve2" else "pve2"
    moved = apps.MigrateApp(apps_pb2.MigrateAppRequest(app_id=op.app_id, node=there)).operation
    succeeded(agent, agent.member, moved.id)
    assert apps.GetApp(apps_pb2.GetAppRequest(app_id=op.app_id)).app.node == there

    admin = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)
    found = admin.DiscoverApps(apps_pb2.DiscoverAppsRequest()).containers
    assert [(c.vmid, c.name, c.node) for c in found] == [(150, "legacy-wiki", "pve1")]
    adopted = admin.AdoptApp(apps_pb2.AdoptAppRequest(vmid=150, node="pve1")).operation
    app_id = succeeded(agent, agent.admin, adopted.id)["app_id"]
    wiki = admin.GetApp(apps_pb2.GetAppRequest(app_id=app_id)).app
    assert (wiki.hostname, wiki.adopted, wiki.owner_id) == ("legacy-wiki", True, agent.admin_id)
    assert code_of(lambda: admin.AdoptApp(apps_pb2.AdoptAppRequest(vmid=4242, node="pve1"))) == C.NOT_FOUND
    assert list(admin.DiscoverApps(apps_pb2.DiscoverAppsRequest(host="lab")).containers) == []


# -- the rest of the contract, health, and the mapping itself ------------------------------------


def test_maintenance_jobs_on_demand(agent: Agent, pve: HarnessPve) -> None:
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    op = apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname="git-1")).operation
    succeeded(agent, agent.member, op.id)
    vmid = apps.GetApp(apps_pb2.GetAppRequest(app_id=op.app_id)).app.vmid
    pve.ct(vmid).status = "stopped"  # stopped behind Proximity's back
    maintenance = agent.stub(maintenance_pb2_grpc.MaintenanceServiceStub, agent.admin)
    report = maintenance.Reconcile(maintenance_pb2.ReconcileRequest(host="lab")).report
    [host] = report.hosts
    assert (host.host, host.reachable, host.apps) == ("lab", True, 1)
    [change] = report.changes
    assert (change.app_id, change.status_before, change.status_after) == (
        op.app_id,
        apps_pb2.APP_STATUS_RUNNING,
        apps_pb2.APP_STATUS_STOPPED,
    )
    janitor = maintenance.RunJanitor(maintenance_pb2.RunJanitorRequest(hard_grace_seconds=600)).report
    assert list(janitor.failed_operation_ids) == [] and list(janitor.errors) == []
    assert (
        code_of(lambda: maintenance.RunJanitor(maintenance_pb2.RunJanitorRequest(hard_grace_seconds=-1)))
        == C.INVALID_ARGUMENT
    )
    [synced] = maintenance.RunNodeSync(maintenance_pb2.RunNodeSyncRequest()).report.hosts
    assert (synced.host, synced.ok, list(synced.nodes)) == ("lab", True, ["pve1"])
    assert code_of(lambda: maintenance.Reconcile(maintenance_pb2.ReconcileRequest(host="nope"))) == C.NOT_FOUND


def test_health_checking_needs_no_token(agent: Agent) -> None:
    health = agent.stub(health_pb2_grpc.HealthStub, None)
    for service in ("", "proximity.v1.AppService", "proximity.v1.OperationService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    assert code_of(lambda: health.Check(health_pb2.HealthCheckRequest(service="nope.Service"))) == C.NOT_FOUND


ERROR_CODES = [
    (errors.ValidationError("x", field="f"), C.INVALID_ARGUMENT),
    (errors.InvalidParameterError("x", errors={"memory": "bad"}), C.INVALID_ARGUMENT),
    (errors.NotFoundError("x"), C.NOT_FOUND),
    (errors.AlreadyExistsError("x"), C.ALREADY_EXISTS),
    (errors.BusyError("x"), C.ABORTED),
    (errors.LockedError("x"), C.ABORTED),
    (errors.ConflictError("x"), C.FAILED_PRECONDITION),
    (errors.AuthenticationError("x"), C.FAILED_PRECONDITION),
    (errors.PermissionDeniedError("x"), C.FAILED_PRECONDITION),
    (errors.RootRequiredError("x"), C.FAILED_PRECONDITION),
    (errors.UnavailableError("x"), C.UNAVAILABLE),
    (errors.UnreachableError("x"), C.UNAVAILABLE),
    (errors.TLSError("x"), C.UNAVAILABLE),
    (errors.TransientError("x"), C.UNAVAILABLE),
    (errors.TaskError("x", upid="u"), C.INTERNAL),
    (errors.TaskTimeoutError("x", upid="u"), C.DEADLINE_EXCEEDED),
    (errors.TaskFailedError("x", upid="u", exitstatus="err"), C.FAILED_PRECONDITION),
    (errors.NodeShellError("x"), C.UNAVAILABLE),
    (errors.CommandTimeoutError("x"), C.DEADLINE_EXCEEDED),
    (errors.CommandFailedError("x", exit_status=1), C.FAILED_PRECONDITION),
    (errors.HostKeyError("x"), C.FAILED_PRECONDITION),
    (errors.OperationError("x", operation_id="o"), C.INTERNAL),
    (errors.OperationTimeout("x", operation_id="o"), C.DEADLINE_EXCEEDED),
    (errors.OperationFailed("x", operation_id="o", step="s"), C.FAILED_PRECONDITION),
    (errors.NotRecordedError("x"), C.FAILED_PRECONDITION),
    (errors.OperationCancelled("x", operation_id="o"), C.CANCELLED),
    (errors.SecretKeyError("x"), C.INTERNAL),
    (errors.ProxmoxError("x"), C.INTERNAL),
    (errors.ProximityError("x"), C.INTERNAL),
]


@pytest.mark.parametrize(("exc", "code"), ERROR_CODES, ids=[type(e).__name__ for e, _ in ERROR_CODES])
def test_every_error_of_the_tree_has_its_code(exc: errors.ProximityError, code: grpc.StatusCode) -> None:
    failure = to_failure(exc)
    assert failure.code == code
    assert dict(failure.metadata)["proximity-error-kind"] == type(exc).__name__
    assert failure.details.endswith(str(exc)) and (exc.hint == "" or exc.hint in failure.details)


def test_the_table_covers_the_whole_tree_and_unexpected_errors_leak_nothing() -> None:
    tree = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ProximityError)}
    assert tree == {type(e) for e, _ in ERROR_CODES}  # a new class in errors.py must be mapped here
    leaked = "password=hunter2 at /srv/secret"
    failure = to_failure(RuntimeError(leaked), method="/proximity.v1.AppService/GetApp")
    assert failure.code == C.INTERNAL and "reference" in failure.details
    assert "hunter2" not in failure.details and "RuntimeError" not in failure.details
    assert to_failure(KeyError("k")).code == C.INTERNAL


# -- clients nobody here wrote, and TLS --------------------------------------------------------------


def _buf_curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npx", "--yes", "@bufbuild/buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_buf_curl_lists_the_services_by_reflection_and_calls_a_list(agent: Agent) -> None:
    listed = _buf_curl("--list-methods", f"http://{agent.target}")
    assert listed.returncode == 0, listed.stderr
    methods = set(listed.stdout.split())
    for service in (
        "CatalogService",
        "HostService",
        "NodeService",
        "AppService",
        "OperationService",
        "SettingsService",
        "UserService",
        "BackupService",
        "MaintenanceService",
    ):
        assert any(m.startswith(f"proximity.v1.{service}/") for m in methods), service
    assert "proximity.v1.OperationService/WatchOperation" in methods

    url = f"http://{agent.target}/proximity.v1.CatalogService/ListCatalogApps"
    called = _buf_curl("-H", f"authorization: Bearer {agent.member}", "-d", '{"pageSize": 2}', url)
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert [a["id"] for a in answer["apps"]] == sorted(a.id for a in agent.px.catalog.list())[:2]
    assert answer["nextPageToken"]
    refused = _buf_curl("-d", "{}", url)
    assert refused.returncode != 0 and json.loads(refused.stderr)["code"] == "unauthenticated"


def test_tls_and_client_certificates(agent_px, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("client@example")
    key_file = tmp_path / "server.key"
    server_cert.private_key_pem.write_to_path(str(key_file))
    token = bootstrap_admin_token(agent_px, "tls-admin")
    bearer = (("authorization", f"Bearer {token}"),)
    request = users_pb2.GetCurrentUserRequest()
    ca_pem = ca.cert_pem.bytes()

    # TLS: key from a file, certificate as text
    plain_tls = ServerThread(
        ServerOptions(port=0, tls_cert=server_cert.cert_chain_pems[0].bytes().decode(), tls_key=str(key_file)), agent_px
    )
    try:
        with grpc.secure_channel(f"localhost:{plain_tls.port}", grpc.ssl_channel_credentials(ca_pem)) as channel:
            me = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(request, metadata=bearer, timeout=10)
            assert me.user.name == "tls-admin"
        with grpc.insecure_channel(f"localhost:{plain_tls.port}") as channel:  # plaintext is not spoken
            assert (
                code_of(
                    lambda: users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(request, metadata=bearer, timeout=5)
                )
                == C.UNAVAILABLE
            )
    finally:
        plain_tls.stop()

    # client certificates: a client without one signed by the CA cannot even connect
    mutual = ServerThread(
        ServerOptions(
            port=0,
            tls_cert=server_cert.cert_chain_pems[0].bytes().decode(),
            tls_key=server_cert.private_key_pem.bytes().decode(),
            client_ca=ca_pem.decode(),
        ),
        agent_px,
    )
    try:
        with grpc.secure_channel(f"localhost:{mutual.port}", grpc.ssl_channel_credentials(ca_pem)) as channel:
            assert (
                code_of(
                    lambda: users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(request, metadata=bearer, timeout=5)
                )
                == C.UNAVAILABLE
            )
        credentials = grpc.ssl_channel_credentials(
            ca_pem, client_cert.private_key_pem.bytes(), client_cert.cert_chain_pems[0].bytes()
        )
        with grpc.secure_channel(f"localhost:{mutual.port}", credentials) as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            assert stub.GetCurrentUser(request, metadata=bearer, timeout=10).user.name == "tls-admin"
            # a certificate is not a token: the bearer token is still required
            assert code_of(lambda: stub.GetCurrentUser(request, timeout=5)) == C.UNAUTHENTICATED
    finally:
        mutual.stop()


def test_server_options_are_checked() -> None:
    with pytest.raises(pydantic.ValidationError, match="tls_cert and tls_key together"):
        ServerOptions(tls_cert="-----BEGIN CERTIFICATE-----")
    with pytest.raises(pydantic.ValidationError, match="client_ca"):
        ServerOptions(client_ca="-----BEGIN CERTIFICATE-----")
    with pytest.raises(pydantic.ValidationError):
        ServerOptions(port=70000)
    with pytest.raises(pydantic.ValidationError):
        ServerOptions(prot=1)  # type: ignore[call-arg]
