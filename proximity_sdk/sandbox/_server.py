"""Serve a fakepve-based sandbox Proxmox on loopback, over HTTPS with its own CA, in a thread."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from proximity_sdk.errors import ProximityError

_START_TIMEOUT = 30.0
SANDBOX_TOKEN_ID = "root@pam!proximity"  # noqa: S105 - an id, not a secret
SANDBOX_USER = "root@pam"


class SandboxUnavailableError(ProximityError):
    """The sandbox needs the optional ``fakepve`` package."""

    default_hint = "Install the sandbox extra: pip install 'proximity[sandbox]'"


def _import_fakepve() -> Any:
    try:
        import fakepve
        from fakepve import certs
    except ModuleNotFoundError as exc:
        raise SandboxUnavailableError(f"the sandbox Proxmox is not installed ({exc.name} missing)") from exc
    return fakepve, certs


class Sandbox:
    """A running sandbox Proxmox (a fake PVE 9 API) on 127.0.0.1.

    Clearly not a real cluster: containers "run" without running anything. Connect with
    ``url``, ``token_id``/``token_secret`` (or ``user``/``password``) and ``ca_file``.
    """

    def __init__(self, pve: Any, loop: asyncio.AbstractEventLoop, thread: threading.Thread, directory: Path,
                 *, owns_directory: bool, token_secret: str, password: str) -> None:
        self.pve = pve
        self._loop = loop
        self._thread = thread
        self.directory = directory
        self._owns_directory = owns_directory
        self.token_id = SANDBOX_TOKEN_ID
        self.token_secret = token_secret
        self.user = SANDBOX_USER
        self.password = password
        self.ca_file = str(directory / "sandbox-ca.crt")

    @property
    def url(self) -> str:
        return f"https://{self.pve.host}:{self.pve.port}"

    @classmethod
    def start(cls, *, nodes: Sequence[str] = ("pve1", "pve2"), directory: str | Path | None = None,
              time_scale: float = 0.0, port: int = 0) -> Sandbox:
        """Start a sandbox with these nodes; ``time_scale`` real seconds per PVE second (0: tasks end at once)."""
        fakepve, certs = _import_fakepve()
        owns = directory is None
        where = Path(tempfile.mkdtemp(prefix="proximity-sandbox-")) if directory is None else Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        certfile, keyfile, _ = certs.make_cert(str(where), name="sandbox", hosts=("127.0.0.1",))
        shutil.copyfile(certfile, where / "sandbox-ca.crt")
        password = secrets.token_urlsafe(16)
        token_secret = secrets.token_hex(16)
        pve = fakepve.FakePve(user=SANDBOX_USER, password=password, host="127.0.0.1", port=port)
        pve.time_scale = time_scale
        pve.apitokens[SANDBOX_TOKEN_ID] = token_secret
        pve.nodes.clear()
        for name in nodes:
            pve.add_node(name)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="proximity-sandbox", daemon=True)
        thread.start()
        ready.wait(_START_TIMEOUT)
        asyncio.run_coroutine_threadsafe(pve.start(certfile, keyfile), loop).result(_START_TIMEOUT)
        return cls(pve, loop, thread, where, owns_directory=owns, token_secret=token_secret, password=password)

    def stop(self) -> None:
        """Stop serving and remove the sandbox's files (when it made its own directory)."""
        if not self._loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self.pve.stop(), self._loop).result(_START_TIMEOUT)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(_START_TIMEOUT)
                self._loop.close()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Sandbox {self.url} (a fake Proxmox for trying Proximity)>"
