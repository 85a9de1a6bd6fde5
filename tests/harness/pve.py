"""Harness: a real fakepve served over HTTPS, our client pointed at it, every request schema-checked.

Fixtures (exported through ``__all__``):

- ``pve``: a started :class:`HarnessPve` for one test, ``time_scale`` 0 (tasks finish inside
  the request). Set ``pve.time_scale`` in the test for tasks that take time. On teardown every
  request the test sent is checked against the PVE 9.1 schema, and 8.4 unless the test is
  marked ``pve9_only``; marked ``pve_schema_exempt``, nothing is checked.
- ``pve_ca``: the CA file that verifies the fake's certificate.
- ``pve_client``: a :class:`ProxmoxClient` with an API token (``root@pam!proximity``).
- ``pve_password_client``: a :class:`ProxmoxClient` with ticket auth (``root@pam`` / ``secret``).

:class:`HarnessPve` is the sandbox's Proxmox (:class:`proximity_sdk.sandbox._pve.SandboxPve`: fakepve
plus DHCP leases, ``aplinfo`` downloads and vzdump/restore with real archive files) plus what
tests need beyond it: tasks that end with ``WARNINGS: n``, a request log with query strings,
task end times and clone listeners.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fakepve.certs import make_cert
from fakepve.model import TaskError

from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.sandbox._pve import SandboxPve
from tests.harness.pve_schema import RecordedRequest, check_requests

__all__ = ["pve", "pve_ca", "pve_client", "pve_password_client", "pve_pki"]

HOST = "127.0.0.1"
TOKEN_ID = "root@pam!proximity"
TOKEN_SECRET = "5f0c2a8e-0000-4000-8000-000000000001"
USER = "root@pam"
PASSWORD = "secret"
START_TIMEOUT = 30


class HarnessPve(SandboxPve):  # type: ignore[misc]
    """The sandbox's Proxmox plus the behaviour only tests need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every request with its query string (fakepve's own pve.requests drops the query).
        self.recorded: list[RecordedRequest] = []
        # task type -> WARN lines: the next task of that type logs them and ends "WARNINGS: n".
        self.task_warnings: dict[str, list[str]] = {}
        # upid -> time.monotonic() when the task's work ended (it reads "stopped" from then on).
        self.task_finished_at: dict[str, float] = {}
        self._running: set[asyncio.Future[None]] = set()
        # called (source vmid, new vmid) when a clone task ends OK: a test copies the stand-in
        # container's files there, as a real clone copies the data
        self.clone_listeners: list[Callable[[int, int], None]] = []

    # ------------------------------------------------------------ recording

    def _record(self, request: Any, body: bytes) -> None:
        super()._record(request, body)
        self.recorded.append(
            RecordedRequest(
                request.method,
                request.path,
                request.query_string,
                bytes(self.requests[-1][2]),
                request.content_type,
            )
        )

    # ------------------------------------------------------------- tasks

    async def task(
        self,
        node: str,
        ttype: str,
        tid: Any,
        user: str,
        body: Callable[[], Awaitable[Any]],
        vm: Any = None,
        lock: bool = True,
        log: Any = (),
    ) -> str:
        """fakepve's task runner, plus tasks that end ``WARNINGS: n`` (see ``task_warnings``)."""
        finished: dict[str, Any] = {}
        inner = body

        async def timed() -> Any:
            try:
                return await inner()
            finally:
                finished["at"] = time.monotonic()
                if "upid" in finished:
                    self.task_finished_at[finished["upid"]] = finished["at"]

        warnings = self.task_warnings.pop(ttype, None)
        if not warnings:
            upid: str = await super().task(node, ttype, tid, user, timed, vm=vm, lock=lock, log=log)
            self._note_finish(upid, finished)
            return upid
        upid, pid, start = self._upid(node, ttype, tid, user)
        record: dict[str, Any] = {
            "upid": upid,
            "node": node,
            "pid": pid,
            "pstart": pid * 7,
            "starttime": start,
            "type": ttype,
            "id": str(tid),
            "user": user,
            "status": "running",
            "log": list(log),
        }
        self.tasks[upid] = record
        self.tasklog.append(record)

        async def run() -> None:
            status = f"WARNINGS: {len(warnings)}"
            try:
                if vm is not None and lock:
                    await self.acquire(vm, upid)
                try:
                    record["log"].extend(warnings)  # logged while the task runs
                    note = await timed()
                    if note:
                        record["log"].append(note)
                finally:
                    if vm is not None and lock:
                        self.release(vm, upid)
            except TaskError as exc:
                status = str(exc)
                record["log"].append(status)
            record.update(status="stopped", exitstatus=status, endtime=int(time.time()))
            record["log"].append("TASK " + (status if status.startswith("WARNINGS") else "ERROR: " + status))

        if self.time_scale:
            self._running.add(asyncio.ensure_future(run()))
        else:
            await run()
        self._note_finish(upid, finished)
        self.follow_worker(upid)  # the sandbox's worker process (worker_processes), made by _upid
        return upid

    def _note_finish(self, upid: str, finished: dict[str, Any]) -> None:
        # A task that runs on (time_scale > 0) records its end itself once it knows its upid.
        finished["upid"] = upid
        if "at" in finished:
            self.task_finished_at[upid] = finished["at"]

    # --------------------------------------------------------------- clone

    async def _lxc_clone(self, user: str, v: dict[str, Any]) -> Any:
        """fakepve's clone, then every ``clone_listeners`` entry once the task ended OK."""
        upid = await super()._lxc_clone(user, v)

        async def notify() -> None:
            while self.tasks[upid]["status"] == "running":
                await asyncio.sleep(0.01)
            if self.tasks[upid].get("exitstatus") == "OK":
                for listener in list(self.clone_listeners):
                    listener(int(v["vmid"]), int(v["newid"]))

        if self.time_scale:
            self._running.add(asyncio.ensure_future(notify()))
        else:
            await notify()
        return upid


class ServedPve:
    """A HarnessPve listening on 127.0.0.1 (a free port) on its own event loop thread."""

    def __init__(self, pve: HarnessPve, certfile: str, keyfile: str) -> None:
        self.pve = pve
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=f"harness-pve-{id(pve)}", daemon=True)
        self.thread.start()
        try:
            self.call(pve.start(certfile, keyfile))
        except BaseException:
            self._halt()
            raise

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine of the fake (hold_config_lock, backup, ...) on its loop; returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(START_TIMEOUT)  # type: ignore[arg-type]

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _halt(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_TIMEOUT)
        if not self.thread.is_alive():
            self.loop.close()

    def stop(self) -> None:
        try:
            self.call(self.pve.stop())
            # Tasks still running (a test that timed out on purpose) end with the server.
            self.call(self._cancel_tasks())
        finally:
            self._halt()
            self.pve.end_workers()


def make_pki(directory: str | Path) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1; the certificate is also the CA clients verify with."""
    certfile, keyfile, _der = make_cert(str(directory), name="harness-pve", hosts=(HOST,))
    return certfile, keyfile


@contextmanager
def serve_pve(certfile: str, keyfile: str, *, time_scale: float = 0.0) -> Iterator[tuple[HarnessPve, ServedPve]]:
    """Serve a fresh HarnessPve for the duration of the block (used by tests and bench/)."""
    fake = HarnessPve(user=USER, password=PASSWORD, host=HOST, port=0)
    fake.time_scale = time_scale
    fake.apitokens[TOKEN_ID] = TOKEN_SECRET
    served = ServedPve(fake, certfile, keyfile)
    fake.serving = served  # so tests can reach the loop: pve.serving.call(pve.hold_config_lock(...))
    try:
        yield fake, served
    finally:
        served.stop()


def token_client(fake: HarnessPve, ca_file: str, **kwargs: Any) -> ProxmoxClient:
    options: dict[str, Any] = {"timeout": (5.0, 30.0), "retry_backoff": (0.01, 0.05)}
    options.update(kwargs)
    return ProxmoxClient(url=fake.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=ca_file, **options)


@pytest.fixture(scope="session")
def pve_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certfile, keyfile) every fake of the session serves."""
    return make_pki(tmp_path_factory.mktemp("harness-pve-pki"))


@pytest.fixture(scope="session")
def pve_ca(pve_pki: tuple[str, str]) -> str:
    """The CA file that verifies the fake's certificate."""
    return pve_pki[0]


@pytest.fixture
def pve(request: pytest.FixtureRequest, pve_pki: tuple[str, str]) -> Iterator[HarnessPve]:
    """A started HarnessPve; every request the test sends is schema-checked at teardown."""
    marker = request.node.get_closest_marker("pve")
    time_scale = float(marker.kwargs.get("time_scale", 0.0)) if marker else 0.0
    with serve_pve(*pve_pki, time_scale=time_scale) as (fake, _served):
        yield fake
    check_schema_at_teardown(request, fake)


def check_schema_at_teardown(request: pytest.FixtureRequest, fake: Any) -> None:
    """Fail the test when a request it sent does not match the PVE API schema (9.1 and 8.4, or 9.1
    only with ``pve9_only``; nothing with ``pve_schema_exempt``)."""
    if request.node.get_closest_marker("pve_schema_exempt"):
        return
    versions = ("9.1",) if request.node.get_closest_marker("pve9_only") else ("9.1", "8.4")
    problems = check_requests(fake.recorded, versions=versions)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        pytest.fail(f"{len(problems)} request(s) do not match the PVE API schema:\n  {shown}", pytrace=False)


@pytest.fixture
def pve_client(pve: HarnessPve, pve_ca: str) -> Iterator[ProxmoxClient]:
    """Our client, API token auth, verifying the fake's certificate with pve_ca."""
    with token_client(pve, pve_ca) as client:
        yield client


@pytest.fixture
def pve_password_client(pve: HarnessPve, pve_ca: str) -> Iterator[ProxmoxClient]:
    """Our client, ticket auth (root@pam / secret)."""
    client = ProxmoxClient(
        url=pve.url,
        user=USER,
        password=PASSWORD,
        ca_file=pve_ca,
        timeout=(5.0, 30.0),
        retry_backoff=(0.01, 0.05),
    )
    with client:
        yield client
