"""Harness: app images without a public registry, served by a local registry, and a catalog for them.

No Docker engine runs on the node. Images are OCI layouts made with ``umoci`` from directories
holding Debian's static busybox (``busybox-static``), and copied into a local ``docker-registry``
(Debian's package) with ``skopeo``. The registry listens on the LXC bridge's address (10.0.3.1),
which every test container reaches; containers trust it through the host's registry settings
(``px.hosts.set_registries(insecure=[...])``), the product feature, not a hand-made daemon.json.

Images (``<registry>/proximity-test/...``):

- ``web:1`` / ``web:2``: busybox httpd on 8080 serving ``/`` (``web v1`` / ``web v2``) and
  ``/cgi-bin/note`` (``?set=TEXT`` stores TEXT in the volume at /data; the answer is the note);
- ``web:broken``: the release whose service exits at once (``exit 3``);
- ``crash:1``: an app that crashes at start;
- ``kv:1``: a two-service app from one image: ``kv-db`` (a TCP value store on 6000 that answers
  only a client giving ``$DB_PASSWORD``) and ``kv-web`` (httpd on 8080 whose ``/cgi-bin/value``
  reads and writes the value through ``db:6000`` with the generated password; 500 on refusal).

Fixtures: ``local_registry`` (session: the images built once, the registry started on a free port).
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LocalRegistry", "build_images", "catalog_entries", "local_registry"]

BRIDGE_ADDRESS = "10.0.3.1"
BUSYBOX = Path("/bin/busybox")
PREFIX = "proximity-test"

_NOTE_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo
case "$QUERY_STRING" in
    set=*) printf '%s\\n' "${QUERY_STRING#set=}" > /data/note ;;
esac
cat /data/note 2>/dev/null || echo "no note"
"""

# kv-db: one connection per process (nc -ll -e); the first line is "<password> get" or
# "<password> set <value>"; a wrong password is refused
_KV_SERVER = """#!/bin/sh
read -r password command value
if [ "$password" != "$DB_PASSWORD" ]; then echo "DENIED"; exit 0; fi
case "$command" in
    set) printf '%s\\n' "$value" > /data/value; echo "OK $value" ;;
    get) echo "OK $(cat /data/value 2>/dev/null)" ;;
    *) echo "ERROR unknown command" ;;
esac
"""

_KV_CGI = """#!/bin/sh
case "$QUERY_STRING" in
    set=*) line="$DB_PASSWORD set ${QUERY_STRING#set=}" ;;
    *) line="$DB_PASSWORD get" ;;
esac
answer=$(echo "$line" | nc -w 5 "${DB_HOST:-db}" 6000 | head -n 1)
case "$answer" in
    OK*) echo "Content-Type: text/plain"; echo; echo "value: ${answer#OK }" ;;
    *) echo "Status: 500 Internal Server Error"; echo "Content-Type: text/plain"; echo;
       echo "the database refused: ${answer:-no answer}" ;;
esac
"""


@dataclass(frozen=True)
class ImageSpec:
    tag: str  # name:tag under PREFIX
    cmd: list[str]
    files: dict[str, tuple[str, int]]  # path in the image -> (text, mode)
    ports: tuple[int, ...] = ()


def _specs() -> list[ImageSpec]:
    httpd = ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    web = {"/www/cgi-bin/note": (_NOTE_CGI, 0o755)}
    return [
        ImageSpec("web:1", httpd, {**web, "/www/index.html": ("web v1\n", 0o644)}, (8080,)),
        ImageSpec("web:2", httpd, {**web, "/www/index.html": ("web v2\n", 0o644)}, (8080,)),
        ImageSpec("web:broken", ["/bin/sh", "-c", "echo 'web broken: giving up at once' >&2; exit 3"],
                  {**web, "/www/index.html": ("web broken\n", 0o644)}, (8080,)),
        ImageSpec("crash:1", ["/bin/sh", "-c", "echo 'crash: cannot start' >&2; exit 1"], {}, (8080,)),
        ImageSpec("kv:1", httpd, {"/www/cgi-bin/value": (_KV_CGI, 0o755), "/www/index.html": ("kv\n", 0o644),
                                  "/usr/local/bin/kv-server": (_KV_SERVER, 0o755)}, (8080, 6000)),
    ]


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def missing_tools() -> list[str]:
    """What this harness needs and the machine lacks (Debian packages named)."""
    need = {"umoci": "umoci", "skopeo": "skopeo", "docker-registry": "docker-registry"}
    problems = [f"{tool} (apt-get install {package})" for tool, package in need.items() if not shutil.which(tool)]
    if not BUSYBOX.exists():
        problems.append("/bin/busybox (apt-get install busybox-static)")
    return problems


def build_images(layout: Path) -> list[str]:
    """Every test image into the OCI layout ``layout`` (built once: an existing layout is reused;
    test workers building at the same moment take turns)."""
    layout.parent.mkdir(parents=True, exist_ok=True)
    with (layout.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_images(layout)


def _build_images(layout: Path) -> list[str]:
    specs = _specs()
    if (layout / "index.json").exists():
        index = json.loads((layout / "index.json").read_text())
        present = {m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]}
        if all(s.tag.replace(":", "-") in present for s in specs):
            return [s.tag for s in specs]
        shutil.rmtree(layout)
    layout.parent.mkdir(parents=True, exist_ok=True)
    _run(["umoci", "init", "--layout", str(layout)])
    for spec in specs:
        ref = f"{layout}:{spec.tag.replace(':', '-')}"
        bundle = layout.parent / f"bundle-{spec.tag.replace(':', '-')}"
        shutil.rmtree(bundle, ignore_errors=True)
        _run(["umoci", "new", "--image", ref])
        _run(["umoci", "unpack", "--image", ref, str(bundle)])
        rootfs = bundle / "rootfs"
        for sub in ("bin", "data", "tmp", "www", "usr/local/bin"):
            (rootfs / sub).mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        # every applet as a link, so CGI scripts run with /bin/sh, cat, nc ...
        applets = _run([str(BUSYBOX), "--list"]).split()
        for applet in applets:
            link = rootfs / "bin" / applet
            if applet != "busybox" and not link.exists():
                link.symlink_to("busybox")
        (rootfs / "etc").mkdir(exist_ok=True)
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
    """Debian's docker-registry on ``address``:free port, storage in ``directory``."""

    def __init__(self, directory: Path, *, address: str = BRIDGE_ADDRESS) -> None:
        self.directory = directory
        self.port = _free_port(address)
        self.address = f"{address}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        storage = self.directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n")
        log = (self.directory / "registry.log").open("ab")
        self._process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        host, _, port = self.address.partition(":")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not start on {self.address}: see {self.directory}/registry.log")

    def push(self, layout: Path, tag: str) -> str:
        """Copy ``tag`` from the OCI layout into the registry; its reference for compose files."""
        reference = self.image(tag)
        _run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
              f"oci:{layout}:{tag.replace(':', '-')}", f"docker://{reference}"])
        return reference

    def image(self, tag: str) -> str:
        return f"{self.address}/{PREFIX}/{tag}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _entry(app_id: str, version: str, services: dict[str, Any], *, ports: list[int], main_service: str,
           volumes: list[str], health_path: str | None = "/", secrets: list[dict[str, str]] | None = None,
           ) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": app_id, "name": app_id, "version": version, "description": f"test app {app_id}",
        "category": "Testing",
        "docker_compose": {"services": services, "volumes": {v: {} for v in volumes}},
        "ports": ports, "main_service": main_service, "main_port": ports[0], "volumes": volumes,
        "os_template": "debian-12-standard", "secrets": secrets or [],
    }
    if health_path:
        entry["health_path"] = health_path
    return entry


def web_entry(registry: LocalRegistry, version: str, tag: str) -> dict[str, Any]:
    """The one-service web app ``rweb`` at catalog ``version`` running image ``web:<tag>``."""
    return _entry("rweb", version, {"web": {
        "image": registry.image(f"web:{tag}"), "ports": ["8080:8080"], "volumes": ["rweb_data:/data"],
        "restart": "unless-stopped"}}, ports=[8080], main_service="web", volumes=["rweb_data"])


def catalog_entries(registry: LocalRegistry) -> dict[str, dict[str, Any]]:
    """file name -> catalog entry: ``rweb`` (v1), ``rcrash`` (crashes at start), ``rkv`` (two services)."""
    crash = _entry("rcrash", "1.0", {"app": {
        "image": registry.image("crash:1"), "ports": ["8080:8080"], "restart": "unless-stopped"}},
        ports=[8080], main_service="app", volumes=[])
    kv = _entry("rkv", "1.0", {
        "web": {"image": registry.image("kv:1"), "ports": ["8080:8080"], "restart": "unless-stopped",
                "environment": {"DB_PASSWORD": "${DB_PASSWORD}", "DB_HOST": "db"}},
        "db": {"image": registry.image("kv:1"), "restart": "unless-stopped",
               "command": ["/bin/busybox", "nc", "-ll", "-p", "6000", "-e", "/usr/local/bin/kv-server"],
               "environment": {"DB_PASSWORD": "${DB_PASSWORD}"}, "volumes": ["rkv_data:/data"]},
    }, ports=[8080], main_service="web", volumes=["rkv_data"], secrets=[{"name": "DB_PASSWORD"}])
    return {"rweb.json": web_entry(registry, "1.0", "1"), "rcrash.json": crash, "rkv.json": kv}


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """The test images in a running local registry on the LXC bridge (session-wide)."""
    problems = missing_tools()
    if problems:
        message = "test images unavailable: missing " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: the real_node tier must run, not skip)", pytrace=False)
        pytest.skip(message)
    cache = Path(os.environ.get("PROXIMITY_IMAGE_CACHE", "/var/cache/proximity/images"))
    layout = cache / "oci"
    tags = build_images(layout)
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start()
    try:
        for tag in tags:
            registry.push(layout, tag)
        yield registry
    finally:
        registry.stop()
