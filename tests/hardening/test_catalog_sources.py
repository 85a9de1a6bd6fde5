"""Issue 15: a catalog source is untrusted input. A template cannot read the agent's files, a
special file cannot exhaust memory, nothing fetched is echoed into the problems members list, and
internal addresses are refused unless the admin allowed them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from proximity_portainer import fetch as fetch_module
from proximity_portainer.config import PortainerConfig
from proximity_portainer.source import PortainerSource

from proximity_sdk.catalog.loader import load_source

SECRET = "hunter2-do-not-leak-7f3a"


def _config(tmp_path: Path, *, allow_private: bool = False) -> PortainerConfig:
    return PortainerConfig(
        locations=(), cache_dir=tmp_path / "cache", max_age=0, timeout=5, id_prefix="pt-", allow_private=allow_private
    )


def _stack_template(url: str, stackfile: str) -> dict[str, Any]:
    return {"type": 3, "title": "Stack", "name": "stack", "repository": {"url": url, "stackfile": stackfile}}


def _list(tmp_path: Path, templates: list[dict[str, Any]]) -> Path:
    path = tmp_path / "templates.json"
    path.write_text(json.dumps({"version": "2", "templates": templates}))
    return path


def _everything(result: Any) -> str:
    return json.dumps([p.model_dump(mode="json") for p in result.problems]) + json.dumps(
        [a.model_dump(mode="json") for a in result.apps]
    )


@pytest.mark.parametrize("stack", [("", "etc/agent.toml"), ("file://", "etc/agent.toml"), ("/", "etc/agent.toml")])
def test_a_template_cannot_read_the_agents_files(tmp_path: Path, stack: tuple[str, str]) -> None:
    secret_file = tmp_path / "etc" / "agent.toml"
    secret_file.parent.mkdir()
    secret_file.write_text(f'secret_key = "{SECRET}"\n')
    scheme, stackfile = stack
    url = f"{scheme}{tmp_path}" if scheme != "/" else str(tmp_path)
    path = _list(tmp_path, [_stack_template(url, stackfile)])
    result = load_source(PortainerSource(str(path), config=_config(tmp_path)))
    assert result.apps == []
    [problem] = result.problems
    assert "only http(s)" in problem.message
    assert SECRET not in _everything(result)


def test_a_special_file_cannot_exhaust_memory(tmp_path: Path) -> None:
    # configured by the admin (a local path is allowed) but not a regular file: refused before reading
    began = time.monotonic()
    result = load_source(PortainerSource("/dev/zero", config=_config(tmp_path)))
    assert time.monotonic() - began < 5
    [problem] = result.problems
    assert "not a regular file" in problem.message


def test_an_oversized_local_list_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "_MAX_BYTES", 1024)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"version": "2", "templates": [], "pad": "x" * 4096}))
    [problem] = load_source(PortainerSource(str(big), config=_config(tmp_path))).problems
    assert "larger than 1024 bytes" in problem.message


class _Server:
    def __init__(self, body: bytes) -> None:
        server = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stack_server() -> Iterator[_Server]:
    server = _Server(f"services: {{web: {{image: nginx}}\n  password: [{SECRET}\n".encode())
    yield server
    server.close()


def test_internal_addresses_are_refused_unless_allowed(tmp_path: Path, stack_server: _Server) -> None:
    path = _list(tmp_path, [_stack_template(stack_server.url, "compose.yml")])
    refused = load_source(PortainerSource(str(path), config=_config(tmp_path)))
    [problem] = refused.problems
    assert "non-public address" in problem.message
    assert stack_server.hits == 0  # refused on connect, before any request was sent

    # allowed by the admin: fetched, and the broken YAML is reported by position, never quoted
    allowed = load_source(PortainerSource(str(path), config=_config(tmp_path, allow_private=True)))
    [problem] = allowed.problems
    assert "not valid YAML (line" in problem.message
    assert SECRET not in _everything(allowed)


def test_an_oversized_http_body_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "_MAX_BYTES", 1024)
    server = _Server(b"services: {}\n" + b"#" * 4096)
    try:
        path = _list(tmp_path, [_stack_template(server.url, "compose.yml")])
        [problem] = load_source(PortainerSource(str(path), config=_config(tmp_path, allow_private=True))).problems
        assert "larger than 1024 bytes" in problem.message
    finally:
        server.close()


def test_the_setting_is_read_from_the_environment() -> None:
    assert PortainerConfig.from_env({"PROXIMITY_PORTAINER_ALLOW_PRIVATE": "1"}).allow_private
    assert not PortainerConfig.from_env({}).allow_private
