"""GetApp and GetOperation read on the event loop when the store is a SQLite file
(``Backend.read``, ``Store.reading()``): they answer while every thread of the quick pool is
taken, and go to the pool when the reader finds the file locked."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import grpc
import pytest
from cryptography.fernet import Fernet

from proximity_agent.auth import bootstrap_admin_token
from proximity_agent.server import ServerOptions
from proximity_sdk._client import Proximity
from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc, operations_pb2, operations_pb2_grpc
from proximity_sdk.store import ReadBusy
from tests.agent.conftest import Agent, ServerThread
from tests.harness.db import create_pg_database, drop_pg_database


@contextlib.contextmanager
def _pool_taken(server: ServerThread) -> Iterator[None]:
    """Every thread of the agent's quick pool waits until the block ends."""
    backend = server.server.backend
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(30)

    workers = backend.executor._max_workers
    held = [backend.executor.submit(hold) for _ in range(workers)]
    for _ in range(workers):
        assert started.acquire(timeout=10), "a pool thread did not start"
    try:
        yield
    finally:
        release.set()
        for future in held:
            future.result(10)


def test_get_app_and_get_operation_answer_while_the_pool_is_taken(agent: Agent) -> None:
    host = agent.px.hosts.get("lab")
    mine = agent.px.store.apps.create(hostname="loop-1", host_id=host.id, owner_id=agent.member_id)
    theirs = agent.px.store.apps.create(hostname="loop-2", host_id=host.id, owner_id=agent.other_id)
    op = agent.px.store.operations.create("stop", steps=("stop",), app_id=mine.id, owner_id=agent.member_id)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    operations = agent.stub(operations_pb2_grpc.OperationServiceStub, agent.member)
    apps.GetApp(apps_pb2.GetAppRequest(app_id=mine.id), timeout=10)  # the token is checked and cached
    with _pool_taken(agent.server):
        began = time.monotonic()
        assert apps.GetApp(apps_pb2.GetAppRequest(app_id=mine.id), timeout=5).app.hostname == "loop-1"
        got = operations.GetOperation(operations_pb2.GetOperationRequest(operation_id=op.id), timeout=5)
        assert got.operation.id == op.id
        with pytest.raises(grpc.RpcError) as refused:  # another member's app: as if it did not exist
            apps.GetApp(apps_pb2.GetAppRequest(app_id=theirs.id), timeout=5)
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
        assert time.monotonic() - began < 5


def test_a_locked_file_sends_the_read_to_the_pool(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    host = agent.px.hosts.get("lab")
    app = agent.px.store.apps.create(hostname="loop-3", host_id=host.id, owner_id=agent.member_id)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.member)
    apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id), timeout=10)

    @contextlib.contextmanager
    def busy() -> Iterator[None]:
        raise ReadBusy("locked")
        yield  # pragma: no cover - a generator that never gets here

    monkeypatch.setattr(agent.px.store, "reading", busy)
    with _pool_taken(agent.server):
        answer: Future[apps_pb2.GetAppResponse] = apps.GetApp.future(apps_pb2.GetAppRequest(app_id=app.id), timeout=20)
        time.sleep(0.5)
        assert not answer.done(), "a busy reader's call waits for the pool"
    assert answer.result(10).app.hostname == "loop-3"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A database of its own (the session's shared one may hold another test's secrets)."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.mark.postgres
def test_on_postgresql_the_reads_wait_for_the_pool(pg_database: str, tmp_path: Path) -> None:
    """A PostgreSQL read is a network round trip: it is never made on the event loop."""
    with Proximity.local(
        database_url=pg_database, data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False
    ) as px:
        assert not px.store.reads_locally
        token = bootstrap_admin_token(px, "root-admin")
        host = px.store.hosts.add(name="lab", url="https://pve1:8006", token_id="root@pam!px", token_secret="t")
        app = px.store.apps.create(hostname="pg-1", host_id=host.id)
        server = ServerThread(ServerOptions(port=0), px)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                apps = apps_pb2_grpc.AppServiceStub(channel)
                metadata = (("authorization", f"Bearer {token}"),)
                request = apps_pb2.GetAppRequest(app_id=app.id)
                assert apps.GetApp(request, metadata=metadata, timeout=10).app.hostname == "pg-1"
                with _pool_taken(server):
                    answer = apps.GetApp.future(request, metadata=metadata, timeout=20)
                    time.sleep(0.5)
                    assert not answer.done(), "a PostgreSQL read waits for a pool thread"
                assert answer.result(10).app.hostname == "pg-1"
        finally:
            server.stop()
