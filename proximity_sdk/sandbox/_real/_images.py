"""App images without a public registry: OCI images built from Debian's static busybox, served by
a local registry on the LXC bridge.

No Docker engine runs on the node. An image is an OCI layout made with ``umoci`` from a directory
holding ``/bin/busybox`` (Debian's ``busybox-static``) and its applets, copied with ``skopeo`` into
Debian's ``docker-registry`` listening on the bridge's address (10.0.3.1, a free port), which every
container on ``lxcbr0`` reaches. Containers trust it through the host's registry settings
(``px.hosts.set_registries(insecure=[registry.address])``). Nothing comes from the public internet.

The sandbox's sample image (:data:`SAMPLE_SPECS`): ``proximity-sandbox/demo-web:1``, busybox httpd on
8080 serving :data:`SAMPLE_PAGE`. The test tier builds its own images with the same machinery
(``tests/harness/images.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BRIDGE_ADDRESS",
    "SAMPLE_APP",
    "SAMPLE_PAGE",
    "SAMPLE_SPECS",
    "ImageSpec",
    "LocalRegistry",
    "build_images",
    "image_cache",
    "missing_tools",
    "sample_entry",
]

BRIDGE_ADDRESS = "10.0.3.1"  # lxc-net's address on lxcbr0
BUSYBOX = Path("/bin/busybox")
_START_TIMEOUT = 20.0

SAMPLE_APP = "demo-web"
SAMPLE_PAGE = (
    "<!doctype html>\n<title>Proximity sandbox</title>\n"
    "<h1>demo-web is running</h1>\n"
    "<p>Served by busybox httpd in a real LXC container the Proximity sandbox deployed.</p>\n"
)


class ImageToolError(RuntimeError):
    """An image tool (umoci, skopeo, docker-registry) failed; the message names it and its output."""


@dataclass(frozen=True)
class ImageSpec:
    """One image: ``tag`` (``name:tag``) with ``files`` (path -> (text, mode)) over busybox."""

    tag: str
    cmd: list[str]
    files: dict[str, tuple[str, int]]
    ports: tuple[int, ...] = ()

    @property
    def ref_name(self) -> str:
        """Its name in the OCI layout (a layout's ref names have no ``:``)."""
        return self.tag.replace(":", "-")


HTTPD = ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
SAMPLE_SPECS = (ImageSpec("demo-web:1", HTTPD, {"/www/index.html": (SAMPLE_PAGE, 0o644)}, (8080,)),)


def image_cache() -> Path:
    """Where built layouts are kept (``PROXIMITY_IMAGE_CACHE``, default /var/cache/proximity/images)."""
    return Path(os.environ.get("PROXIMITY_IMAGE_CACHE", "/var/cache/proximity/images"))


def _run(argv: list[str], *, cwd: Path | None = None, timeout: float = 300) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise ImageToolError(f"{' '.join(argv[:3])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def missing_tools() -> list[str]:
    """What building and serving images needs and this machine lacks, each naming its Debian package."""
    need = {"umoci": "umoci", "skopeo": "skopeo", "docker-registry": "docker-registry"}
    problems = [f"{tool} (apt-get install {package})" for tool, package in need.items() if not shutil.which(tool)]
    if not BUSYBOX.exists():
        problems.append(f"{BUSYBOX} (apt-get install busybox-static)")
    return problems


def build_images(layout: Path, specs: Sequence[ImageSpec]) -> list[str]:
    """Every image of ``specs`` into the OCI layout ``layout``; their tags. Built once: a layout
    holding them all is reused (processes building at the same moment take turns)."""
    layout.parent.mkdir(parents=True, exist_ok=True)
    with (layout.parent / f".{layout.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_images(layout, specs)


def _build_images(layout: Path, specs: Sequence[ImageSpec]) -> list[str]:
    if (layout / "index.json").exists():
        index = json.loads((layout / "index.json").read_text())
        present = {m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]}
        if all(s.ref_name in present for s in specs):
            return [s.tag for s in specs]
        shutil.rmtree(layout)
    _run(["umoci", "init", "--layout", str(layout)])
    applets = _run([str(BUSYBOX), "--list"]).split()
    for spec in specs:
        ref = f"{layout}:{spec.ref_name}"
        bundle = layout.parent / f"bundle-{layout.name}-{spec.ref_name}"
        shutil.rmtree(bundle, ignore_errors=True)
        _run(["umoci", "new", "--image", ref])
        _run(["umoci", "unpack", "--image", ref, str(bundle)])
        rootfs = bundle / "rootfs"
        for sub in ("bin", "data", "etc", "tmp", "www", "usr/local/bin"):
            (rootfs / sub).mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        # every applet as a link, so scripts run with /bin/sh, cat, nc ...
        for applet in applets:
            link = rootfs / "bin" / applet
            if applet != "busybox" and not link.exists():
                link.symlink_to("busybox")
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        for path, (text, mode) in spec.files.items():
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(mode)
        _run(["umoci", "repack", "--image", ref, str(bundle)])
        config = ["umoci", "config", "--image", ref, "--config.workingdir", "/"]
        for arg in spec.cmd:
            config += ["--config.cmd", arg]
        for port in spec.ports:
            config += ["--config.exposedports", f"{port}/tcp"]
        config += ["--config.volume", "/data", "--config.env", "PATH=/usr/local/bin:/bin"]
        _run(config)
        shutil.rmtree(bundle, ignore_errors=True)
    _run(["umoci", "gc", "--layout", str(layout)])
    return [s.tag for s in specs]


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """Debian's ``docker-registry`` on ``address``:(a free port), storage and log in ``directory``;
    its images are ``<address>:<port>/<prefix>/<tag>``."""

    def __init__(self, directory: Path, *, prefix: str, address: str = BRIDGE_ADDRESS) -> None:
        self.directory = directory
        self.prefix = prefix
        self.port = _free_port(address)
        self.address = f"{address}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The registry process's id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def start(self) -> None:
        storage = self.directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n"
        )
        with (self.directory / "registry.log").open("ab") as log:
            self._process = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        host, _, port = self.address.partition(":")
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise ImageToolError(f"docker-registry did not start on {self.address}: see {self.directory}/registry.log")

    def push(self, layout: Path, tag: str) -> str:
        """Copy ``tag`` from the OCI layout into the registry; its reference for compose files."""
        reference = self.image(tag)
        _run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci:{layout}:{tag.replace(':', '-')}",
                f"docker://{reference}",
            ]
        )
        return reference

    def image(self, tag: str) -> str:
        return f"{self.address}/{self.prefix}/{tag}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __repr__(self) -> str:
        return f"<LocalRegistry {self.address} ({'running' if self.pid else 'stopped'})>"


def sample_entry(registry: LocalRegistry) -> dict[str, Any]:
    """The catalog entry of the sandbox's sample app ``demo-web``: its image from ``registry``."""
    return {
        "id": SAMPLE_APP,
        "name": "Demo web page",
        "version": "1.0",
        "description": "A static page served by busybox httpd (the real-mode sandbox's sample app)",
        "category": "Sandbox",
        "docker_compose": {
            "services": {
                "web": {"image": registry.image("demo-web:1"), "ports": ["8080:8080"], "restart": "unless-stopped"}
            }
        },
        "ports": [8080],
        "main_service": "web",
        "main_port": 8080,
        "volumes": [],
        "os_template": "debian-12-standard",
        "health_path": "/",
    }
