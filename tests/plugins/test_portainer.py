"""The first-party Portainer plugin, loaded through its entry point; HTTP served from 127.0.0.1."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.render import render_project
from proximity_sdk.plugins.manager import PluginManager

DATA = Path(__file__).parent / "data"


class _Server:
    """A tiny HTTP server: fixed bodies per path, ETag revalidation, request log."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.cache_control: str | None = None
        self.requests: list[tuple[str, str | None]] = []
        self.fail = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("If-None-Match")))
                body = server.bodies.get(self.path)
                if server.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                if server.cache_control:
                    self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http() -> Iterator[_Server]:
    server = _Server()
    server.bodies["/stacks/wordpress/docker-compose.yml"] = (DATA / "wordpress-stack.yml").read_bytes()
    server.bodies["/templates.json"] = (
        (DATA / "portainer-templates.json").read_text().replace("@REPO@", server.url).encode()
    )
    yield server
    server.close()


@pytest.fixture
def portainer_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("PROXIMITY_PORTAINER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PROXIMITY_PORTAINER_TEMPLATES", raising=False)
    monkeypatch.delenv("PROXIMITY_PORTAINER_MAX_AGE", raising=False)
    monkeypatch.delenv("PROXIMITY_PORTAINER_ID_PREFIX", raising=False)
    # the test server listens on loopback: an internal template server the admin allowed
    monkeypatch.setenv("PROXIMITY_PORTAINER_ALLOW_PRIVATE", "1")
    return monkeypatch


def test_entry_point_is_installed() -> None:
    eps = importlib.metadata.entry_points(group="proximity")
    [ep] = [ep for ep in eps if ep.name == "portainer"]
    assert ep.value == "proximity_portainer.plugin"
    assert ep.dist is not None
    assert ep.dist.name == "proximity-portainer"


def test_unconfigured_plugin_offers_nothing(portainer_env: pytest.MonkeyPatch) -> None:
    pm = PluginManager()
    assert "portainer" in pm.names()
    assert [s.name for s in pm.catalog_sources()] == ["builtin"]


def test_templates_from_url_through_the_entry_point(portainer_env: pytest.MonkeyPatch, http: _Server) -> None:
    portainer_env.setenv("PROXIMITY_PORTAINER_TEMPLATES", f"{http.url}/templates.json")
    # trusted: the conversion is checked as is (tests/hardening checks the compose policy on it)
    catalog = Catalog(plugins=PluginManager(), trusted_sources=[f"portainer:{http.url}/templates.json"])
    ids = {app.id for app in catalog.list() if app.id.startswith("portainer-")}
    assert ids == {
        "portainer-nginx",
        "portainer-mysql",
        "portainer-redis",
        "portainer-portainer-agent",
        "portainer-wordpress",
    }
    assert catalog.stats().by_source[f"portainer:{http.url}/templates.json"] == 5

    nginx = catalog.get("portainer-nginx")
    service = nginx.services["nginx"]
    assert service["image"] == "nginx:1.27"
    assert service["ports"] == ["8080:80/tcp", "443:443/tcp"]
    assert service["volumes"] == ["nginx_data1:/etc/nginx", "/srv/www:/usr/share/nginx/html:ro"]
    assert nginx.docker_compose["volumes"] == {"nginx_data1": {}}
    assert (nginx.main_service, nginx.main_port, nginx.version, nginx.category) == (
        "nginx",
        8080,
        "1.27",
        "Webserver",
    )

    agent = catalog.get("portainer-portainer-agent")
    assert agent.services["portainer-agent"]["environment"] == {"LOG_LEVEL": "INFO"}  # the select's default

    mysql = catalog.get("portainer-mysql")
    assert mysql.author == "Oracle"
    assert mysql.main_port == 3306
    project = render_project(mysql)  # the template's default password never ships
    assert "changeme" not in project.compose_text()
    assert "changeme" not in project.env.values()

    stack = catalog.get("portainer-wordpress")
    assert stack.services["wordpress"]["ports"] == ["8080:80"]  # non-secret env substituted
    assert [s.name for s in stack.secrets] == ["MYSQL_DATABASE_PASSWORD"]
    rendered = render_project(stack)
    assert set(rendered.env) == {"MYSQL_DATABASE_PASSWORD"}
    assert "wordpress_db_pw" not in rendered.compose_text()

    problems = {p.origin.split("#")[1]: p.message for p in catalog.errors}
    assert "not supported" in problems["4 (Swarm monitoring)"]
    assert "eighty" in problems["6 (Broken ports)"]


def test_url_is_cached_and_revalidated_with_etag(
    portainer_env: pytest.MonkeyPatch, http: _Server, tmp_path: Path
) -> None:
    portainer_env.setenv("PROXIMITY_PORTAINER_TEMPLATES", f"{http.url}/templates.json")
    http.cache_control = "max-age=300"
    catalog = Catalog(plugins=PluginManager(), trusted_sources=[f"portainer:{http.url}/templates.json"])
    catalog.list()
    catalog.reload()  # fresh in the cache: no request at all
    template_requests = [r for r in http.requests if r[0] == "/templates.json"]
    assert len(template_requests) == 1

    http.requests.clear()
    # let the stored copy age past its max-age, as time would
    for meta_path in (tmp_path / "cache").glob("*.json"):
        meta = json.loads(meta_path.read_text())
        assert meta["max_age"] == 300.0
        assert meta["etag"]
        meta["fetched_at"] -= 301
        meta_path.write_text(json.dumps(meta))
    catalog.reload()
    [(_path, etag)] = [r for r in http.requests if r[0] == "/templates.json"]
    assert etag is not None  # conditional request, answered 304
    assert "portainer-nginx" in catalog

    http.fail = True  # server down: the cached copy keeps the catalog whole
    catalog.reload()
    assert "portainer-nginx" in catalog


def test_unreachable_url_without_cache_is_one_problem(portainer_env: pytest.MonkeyPatch, http: _Server) -> None:
    portainer_env.setenv("PROXIMITY_PORTAINER_TEMPLATES", f"{http.url}/missing.json")
    catalog = Catalog(plugins=PluginManager())
    [problem] = catalog.errors
    assert "HTTP 404" in problem.message
    assert len(catalog) >= 60


def test_templates_from_a_file_and_id_prefix(portainer_env: pytest.MonkeyPatch) -> None:
    portainer_env.setenv("PROXIMITY_PORTAINER_TEMPLATES", str(DATA / "portainer-templates.json"))
    portainer_env.setenv("PROXIMITY_PORTAINER_ID_PREFIX", "pt.")
    catalog = Catalog(plugins=PluginManager(), trusted_sources=[f"portainer:{DATA / 'portainer-templates.json'}"])
    assert {"pt.nginx", "pt.mysql", "pt.redis"} <= {app.id for app in catalog.list()}
    # the stack's repository placeholder is not reachable from a file: reported, not fatal
    assert any("Wordpress" in p.origin for p in catalog.errors)


def test_bad_configuration_is_refused(portainer_env: pytest.MonkeyPatch) -> None:
    from proximity_sdk.errors import ValidationError

    portainer_env.setenv("PROXIMITY_PORTAINER_TEMPLATES", str(DATA / "portainer-templates.json"))
    portainer_env.setenv("PROXIMITY_PORTAINER_ID_PREFIX", "../")
    with pytest.raises(ValidationError) as info:
        PluginManager().catalog_sources()
    assert info.value.field == "PROXIMITY_PORTAINER_ID_PREFIX"
