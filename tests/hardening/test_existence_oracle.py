"""Issue 15: a member learns nothing about what others own. Another user's app, backup or
operation answers exactly as an id that does not exist; a hostname another user holds answers
exactly as one the member holds ("not available": a shared namespace cannot hide that a name is
taken, but it must not say by whom, nor that it is an app at all)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    apps_pb2_grpc,
    backups_pb2,
    backups_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
)
from proximity_sdk.models.app import AppStatus
from tests.agent.conftest import Agent

MISSING = "00000000-0000-4000-8000-000000000000"


def _answer(call: Any, ident: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    exc = failed.value
    metadata = {m.key: m.value.replace(ident, "<id>") for m in (exc.trailing_metadata() or ())}
    return exc.code(), (exc.details() or "").replace(ident, "<id>"), metadata


def _bobs_app(agent: Agent, hostname: str = "bobs") -> str:
    host = agent.px.hosts.get("lab")
    return agent.px.store.apps.create(
        hostname=hostname, host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=170, owner_id=agent.other_id
    ).id


def test_another_users_app_answers_like_a_missing_one(agent: Agent) -> None:
    theirs = _bobs_app(agent)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    for method, request in (
        ("GetApp", apps_pb2.GetAppRequest),
        ("StopApp", apps_pb2.StopAppRequest),
        ("GetAppCredentials", apps_pb2.GetAppCredentialsRequest),
    ):
        hidden = _answer(lambda m=method, r=request: getattr(apps, m)(r(app_id=theirs)), theirs)
        missing = _answer(lambda m=method, r=request: getattr(apps, m)(r(app_id=MISSING)), MISSING)
        assert hidden == missing, method
        assert hidden[0] == grpc.StatusCode.NOT_FOUND


def test_another_users_backup_answers_like_a_missing_one(agent: Agent) -> None:
    theirs = _bobs_app(agent)
    host = agent.px.hosts.get("lab")
    backup = agent.px.store.backups.create(app_id=theirs, hostname="bobs", host_id=host.id, node="pve1", vmid=170)
    backups = agent.stub(backups_pb2_grpc.BackupServiceStub, agent.member)
    hidden = _answer(lambda: backups.GetBackup(backups_pb2.GetBackupRequest(backup_id=backup.id)), backup.id)
    missing = _answer(lambda: backups.GetBackup(backups_pb2.GetBackupRequest(backup_id=MISSING)), MISSING)
    assert hidden == missing
    assert hidden[0] == grpc.StatusCode.NOT_FOUND


def test_another_users_operation_answers_like_a_missing_one(agent: Agent) -> None:
    theirs = agent.px.store.operations.create("start", steps=("start",), owner_id=agent.other_id)
    ops = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.member)
    hidden = _answer(lambda: ops.GetOperation(operations_pb2.GetOperationRequest(operation_id=theirs.id)), theirs.id)
    missing = _answer(lambda: ops.GetOperation(operations_pb2.GetOperationRequest(operation_id=MISSING)), MISSING)
    assert hidden == missing


def test_a_hostname_held_by_another_user_answers_like_ones_own(agent: Agent) -> None:
    _bobs_app(agent, hostname="taken")
    host = agent.px.hosts.get("lab")
    agent.px.store.apps.create(
        hostname="mine", host_id=host.id, status=AppStatus.RUNNING, node="pve1", vmid=171, owner_id=agent.member_id
    )
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)

    def deploy(hostname: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
        return _answer(
            lambda: apps.DeployApp(apps_pb2.DeployAppRequest(catalog_id="gitea", hostname=hostname)), hostname
        )

    theirs, mine = deploy("taken"), deploy("mine")
    assert theirs == mine
    assert theirs[0] == grpc.StatusCode.ALREADY_EXISTS
    assert "is not available" in theirs[1] and "app" not in theirs[1].split("available")[0]
