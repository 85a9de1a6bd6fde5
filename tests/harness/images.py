"""Harness: app images without a public registry, served by a local registry, and a catalog for them.

The machinery (umoci layouts from Debian's static busybox, Debian's docker-registry on the LXC
bridge, trusted through ``px.hosts.set_registries(insecure=[...])``) is the product's:
:mod:`proximity_sdk.sandbox._real._images`. This module holds the test images and catalog.

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

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk.sandbox._real import _images
from proximity_sdk.sandbox._real._images import BRIDGE_ADDRESS, BUSYBOX, ImageSpec, image_cache, missing_tools

__all__ = ["LocalRegistry", "build_images", "catalog_entries", "local_registry"]
__all__ += ["BRIDGE_ADDRESS", "BUSYBOX", "ImageSpec", "missing_tools"]  # re-exported for older users

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


def _specs() -> list[ImageSpec]:
    httpd = ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    web = {"/www/cgi-bin/note": (_NOTE_CGI, 0o755)}
    return [
        ImageSpec("web:1", httpd, {**web, "/www/index.html": ("web v1\n", 0o644)}, (8080,)),
        ImageSpec("web:2", httpd, {**web, "/www/index.html": ("web v2\n", 0o644)}, (8080,)),
        # no quote inside a command argument: PVE 9.1 + LXC 6 cannot carry one into the container
        # (docs/oci.md, "Entrypoints and quotes")
        ImageSpec(
            "web:broken",
            ["/bin/sh", "-c", "echo web broken: giving up at once >&2; exit 3"],
            {**web, "/www/index.html": ("web broken\n", 0o644)},
            (8080,),
        ),
        ImageSpec("crash:1", ["/bin/sh", "-c", "echo crash: cannot start >&2; exit 1"], {}, (8080,)),
        ImageSpec(
            "kv:1",
            httpd,
            {
                "/www/cgi-bin/value": (_KV_CGI, 0o755),
                "/www/index.html": ("kv\n", 0o644),
                "/usr/local/bin/kv-server": (_KV_SERVER, 0o755),
            },
            (8080, 6000),
        ),
    ]


def build_images(layout: Path) -> list[str]:
    """Every test image into the OCI layout ``layout`` (built once: an existing layout is reused;
    test workers building at the same moment take turns)."""
    return _images.build_images(layout, _specs())


class LocalRegistry(_images.LocalRegistry):
    """The product's local registry with the test images' prefix (``proximity-test``)."""

    def __init__(self, directory: Path, *, address: str = BRIDGE_ADDRESS) -> None:
        super().__init__(directory, prefix=PREFIX, address=address)


def _entry(
    app_id: str,
    version: str,
    services: dict[str, Any],
    *,
    ports: list[int],
    main_service: str,
    volumes: list[str],
    health_path: str | None = "/",
    secrets: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": app_id,
        "name": app_id,
        "version": version,
        "description": f"test app {app_id}",
        "category": "Testing",
        "docker_compose": {"services": services, "volumes": {v: {} for v in volumes}},
        "ports": ports,
        "main_service": main_service,
        "main_port": ports[0],
        "volumes": volumes,
        "os_template": "debian-12-standard",
        "secrets": secrets or [],
    }
    if health_path:
        entry["health_path"] = health_path
    return entry


def web_entry(registry: LocalRegistry, version: str, tag: str) -> dict[str, Any]:
    """The one-service web app ``rweb`` at catalog ``version`` running image ``web:<tag>``."""
    return _entry(
        "rweb",
        version,
        {
            "web": {
                "image": registry.image(f"web:{tag}"),
                "ports": ["8080:8080"],
                "volumes": ["rweb_data:/data"],
                "restart": "unless-stopped",
            }
        },
        ports=[8080],
        main_service="web",
        volumes=["rweb_data"],
    )


def catalog_entries(registry: LocalRegistry) -> dict[str, dict[str, Any]]:
    """file name -> catalog entry: ``rweb`` (v1), ``rcrash`` (crashes at start), ``rkv`` (two services)."""
    crash = _entry(
        "rcrash",
        "1.0",
        {"app": {"image": registry.image("crash:1"), "ports": ["8080:8080"], "restart": "unless-stopped"}},
        ports=[8080],
        main_service="app",
        volumes=[],
    )
    kv = _entry(
        "rkv",
        "1.0",
        {
            "web": {
                "image": registry.image("kv:1"),
                "ports": ["8080:8080"],
                "restart": "unless-stopped",
                "environment": {"DB_PASSWORD": "${DB_PASSWORD}", "DB_HOST": "db"},
            },
            "db": {
                "image": registry.image("kv:1"),
                "restart": "unless-stopped",
                "command": ["/bin/busybox", "nc", "-ll", "-p", "6000", "-e", "/usr/local/bin/kv-server"],
                "environment": {"DB_PASSWORD": "${DB_PASSWORD}"},
                "volumes": ["rkv_data:/data"],
            },
        },
        ports=[8080],
        main_service="web",
        volumes=["rkv_data"],
        secrets=[{"name": "DB_PASSWORD"}],
    )
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
    # a layout per version of the specs: a cached layout of older specs would be reused as it is
    digest = hashlib.sha256(repr(_specs()).encode()).hexdigest()[:12]
    layout = image_cache() / f"oci-{digest}"
    tags = build_images(layout)
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start()
    try:
        for tag in tags:
            registry.push(layout, tag)
        yield registry
    finally:
        registry.stop()
