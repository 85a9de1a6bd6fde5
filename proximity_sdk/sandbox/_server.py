"""`Sandbox`: a fake Proxmox cluster on loopback for trying Proximity: the PVE 9 API (fakepve plus
what it lacks, over HTTPS with its own CA, in a thread) and the nodes' shell (an SSH server running
stand-in tools, :mod:`proximity_sdk.sandbox._shell`). Apps deploy, start, back up and restore in
it; nothing really runs."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from proximity_sdk.errors import ProximityError
from proximity_sdk.models.ssh import SshAccess

if TYPE_CHECKING:
    from proximity_sdk.models.host import Host
    from proximity_sdk.sandbox._real._images import LocalRegistry
    from proximity_sdk.sandbox._shell import SandboxShell

_START_TIMEOUT = 30.0
SANDBOX_TOKEN_ID = "root@pam!proximity"  # noqa: S105 - an id, not a secret
SANDBOX_USER = "root@pam"


class SandboxUnavailableError(ProximityError):
    """The sandbox needs the optional ``fakepve`` package."""

    default_hint = "Install the sandbox extra: pip install 'proximity-sdk[sandbox]'"


class RealNodeUnavailableError(SandboxUnavailableError):
    """Real mode needs root, LXC and lxc-net's bridge on this machine."""

    default_hint = (
        "Run scripts/real-node as root (installs lxc, debootstrap, dnsmasq-base, iptables, "
        "bridge-utils, zstd, and umoci, skopeo, docker-registry, busybox-static for the sample "
        "app's image; starts lxc-net; builds the Debian templates)"
    )


def _check_real_node() -> None:
    from proximity_sdk.sandbox._real._images import missing_tools
    from proximity_sdk.sandbox._real._lxc import missing

    problems = missing()
    tools = missing_tools()
    if tools:
        problems.append("the sample app's image and local registry need " + ", ".join(tools))
    if problems:
        raise RealNodeUnavailableError("the sandbox cannot run real containers here: " + "; ".join(problems))


def node_addresses(nodes: Sequence[str]) -> dict[str, str]:
    """Each node's own loopback address (127.0.0.1, .2, ...): its shell answers there, and `pct`
    knows from the address which node's containers it acts on."""
    return {name: f"127.0.0.{index + 1}" for index, name in enumerate(nodes)}


def _import_fakepve() -> tuple[Any, Any]:
    try:
        from fakepve import certs

        from proximity_sdk.sandbox._pve import SandboxPve
    except ModuleNotFoundError as exc:
        raise SandboxUnavailableError(f"the sandbox Proxmox is not installed ({exc.name} missing)") from exc
    return SandboxPve, certs


_LISTEN_LINE = "LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*\n"


class Sandbox:
    """A running sandbox Proxmox (a fake PVE 9 API) on 127.0.0.1.

    Clearly not a real cluster: containers "run" without running anything. Connect with
    ``url``, ``token_id``/``token_secret`` (or ``user``/``password``) and ``ca_file``; its nodes'
    shell with ``ssh``. ``add_to(px)`` does both for a Proximity.
    """

    def __init__(
        self,
        pve: Any,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        directory: Path,
        *,
        owns_directory: bool,
        token_secret: str,
        password: str,
        shell: SandboxShell,
    ) -> None:
        self.pve = pve
        self.shell = shell
        self._loop = loop
        self._thread = thread
        self.directory = directory
        self._owns_directory = owns_directory
        self.token_id = SANDBOX_TOKEN_ID
        self.token_secret = token_secret
        self.user = SANDBOX_USER
        self.password = password
        self.ca_file = str(directory / "sandbox-ca.crt")
        # real mode: the local registry holding the sample image, and the catalog naming it
        self.registry: LocalRegistry | None = None
        self.catalog_paths: list[Path] = []

    @property
    def url(self) -> str:
        return f"https://{self.pve.host}:{self.pve.port}"

    @property
    def nodes(self) -> list[str]:
        return sorted(self.pve.nodes)

    @property
    def real(self) -> bool:
        """True when the containers are real LXC containers (``Sandbox.start(real=True)``)."""
        return bool(getattr(self.pve, "real_prefix", None))

    @property
    def ssh(self) -> SshAccess:
        """SSH access to the sandbox nodes' shell (key and host key given as contents)."""
        return SshAccess(
            user=self.shell.user,
            port=self.shell.port,
            key_file=self.shell.client_key,
            known_hosts=self.shell.known_hosts,
            addresses=node_addresses(self.nodes),
        )

    def listen_on(self, ports: Sequence[int]) -> None:
        """What the containers' ``ss`` reports as listening (the health check looks there): the
        sandbox runs no service, so it says these ports listen in every container."""
        wanted = sorted({int(p) for p in ports if 1 <= int(p) <= 65535})
        header = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        rules = [
            {
                "match": None,
                "times": None,
                "exit_code": 0,
                "stdout": header + "".join(_LISTEN_LINE.format(port=p) for p in wanted),
            }
        ]
        target = self.shell.state / "rules"
        target.mkdir(parents=True, exist_ok=True)
        (target / "ss.json").write_text(json.dumps(rules))

    def add_to(self, px: Any, *, name: str = "sandbox") -> Host:
        """Register the sandbox as host ``name`` of ``px`` (a local or connected Proximity), with its
        API token, CA and nodes' shell, and make every catalog app's ports "listen" in it. In real
        mode, with a local Proximity, the host's registry settings trust the sandbox's local registry
        (:meth:`trust_registry`); a connected one's agent API carries no registry settings: call
        :meth:`add_to` with a local Proximity on the agent's store before it starts
        (``SandboxAgent.prepare(directory)``), as ``proximity sandbox --real`` does."""
        ports: set[int] = set()
        for entry in px.catalog.list():
            ports.update(entry.ports)
            if entry.main_port:
                ports.add(entry.main_port)
        if not self.real:  # a real container's own services listen, or do not
            self.listen_on(sorted(ports))
        host: Host = px.hosts.add(
            name,
            url=self.url,
            token_id=self.token_id,
            token_secret=self.token_secret,
            ca_file=self.ca_file,
            ssh=self.ssh,
        )
        if self.registry is not None and hasattr(px.hosts, "set_registries"):
            self.trust_registry(px, name)
        return host

    def trust_registry(self, px: Any, name: str = "sandbox") -> None:
        """Real mode: host ``name``'s registry settings trust the sandbox's local registry (plain
        HTTP), so apps of :attr:`catalog_paths` (``demo-web``) pull their images from it."""
        if self.registry is None:
            raise ProximityError("only a real-mode sandbox serves a registry (Sandbox.start(real=True))")
        px.hosts.set_registries(name, insecure=[self.registry.address])

    @classmethod
    def start(
        cls,
        *,
        nodes: Sequence[str] = ("pve1", "pve2"),
        directory: str | Path | None = None,
        time_scale: float | None = None,
        port: int = 0,
        real: bool = False,
    ) -> Sandbox:
        """Start a sandbox with these nodes; ``time_scale`` real seconds per PVE second (0: tasks end
        at once; the default, 1 in real mode). ``real``: its containers are real LXC containers
        (needs root, LXC and lxc-net: ``scripts/real-node``; checked before anything starts, raising
        :class:`RealNodeUnavailableError`); the first start builds the Debian template (about 1.5 min).
        Real mode also serves the sample app's image from a local registry on the LXC bridge
        (:attr:`registry`) and writes its catalog entry ``demo-web`` into :attr:`catalog_paths`."""
        sandbox_pve, certs = _import_fakepve()
        from proximity_sdk.sandbox._shell import SandboxShell

        templates: list[Any] = []
        if real:
            _check_real_node()
            from proximity_sdk.sandbox._real._pve import RealSandboxPve
            from proximity_sdk.sandbox._real._templates import build_debian_template, cached_templates

            build_debian_template("bookworm")
            templates = cached_templates()
            sandbox_pve = RealSandboxPve
        if time_scale is None:
            time_scale = 1.0 if real else 0.0

        owns = directory is None
        where = Path(tempfile.mkdtemp(prefix="proximity-sandbox-")) if directory is None else Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        certfile, keyfile, _ = certs.make_cert(str(where), name="sandbox", hosts=("127.0.0.1",))
        shutil.copyfile(certfile, where / "sandbox-ca.crt")
        password = secrets.token_urlsafe(16)
        token_secret = secrets.token_hex(16)
        extra = {"templates": templates} if real else {}
        pve = sandbox_pve(user=SANDBOX_USER, password=password, host="127.0.0.1", port=port, **extra)
        pve.time_scale = time_scale
        # tasks that take time run as processes the node shell can see, as on PVE (task_watch.py)
        pve.worker_processes = time_scale > 0
        # a current PVE: native OCI containers are available (fakepve says "fake"); real mode runs no
        # OCI images, so it reports the last version without them and apps deploy as compose apps
        pve.version = "9.0.10" if real else "9.1.2"
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
        shell = SandboxShell(where / "node", Path(__file__).resolve().parent / "standins")
        if real:
            pve.add_template("local")
        else:
            pve.container_files = lambda vmid: shell.state / "ct" / str(vmid)  # backups hold the app's files
        addresses = node_addresses(nodes)
        pve.node_table = shell.state / "nodes.json"  # `pct` answers from each node's own containers
        pve.node_root = shell.root  # the container configs as files, for the node shell to edit
        pve.node_addresses = {address: name for name, address in addresses.items()}
        sandbox = cls(
            pve, loop, thread, where, owns_directory=owns, token_secret=token_secret, password=password, shell=shell
        )
        try:
            shell.start(list(addresses.values()))
            pve.write_node_table()
            if real:
                sandbox._serve_sample()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def _serve_sample(self) -> None:
        """The sample image built (cached), a local registry serving it, its catalog entry written."""
        from proximity_sdk.sandbox._real._images import (
            SAMPLE_APP,
            SAMPLE_SPECS,
            LocalRegistry,
            build_images,
            image_cache,
            sample_entry,
        )

        layout = image_cache() / "sandbox-oci"
        tags = build_images(layout, SAMPLE_SPECS)
        self.registry = LocalRegistry(self.directory / "registry", prefix="proximity-sandbox")
        self.registry.start()
        for tag in tags:
            self.registry.push(layout, tag)
        catalog = self.directory / "catalog"
        catalog.mkdir(exist_ok=True)
        (catalog / f"{SAMPLE_APP}.json").write_text(json.dumps(sample_entry(self.registry), indent=2))
        self.catalog_paths = [catalog]

    def stop(self) -> None:
        """Stop serving, destroy its real containers and stop its registry (real mode), and remove
        the sandbox's files (when it made its own directory)."""
        self.shell.close()
        try:
            if not self._loop.is_closed():
                try:
                    asyncio.run_coroutine_threadsafe(self.pve.stop(), self._loop).result(_START_TIMEOUT)
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    self._thread.join(_START_TIMEOUT)
                    self._loop.close()
        finally:
            self.pve.end_workers()
            try:
                if self.real:
                    self.pve.destroy_real_containers()
            finally:
                if self.registry is not None:
                    self.registry.stop()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self.real:
            return f"<Sandbox {self.url} (a fake Proxmox API over real LXC containers)>"
        return f"<Sandbox {self.url} (a fake Proxmox for trying Proximity)>"
