"""Issue 15: the compose policy. An untrusted source's entry that asks for anything privileged or
host-reaching is refused when the catalog loads (source, app and field named); a trusted one loads.
Hypothesis fuzzes compose documents against it: hazards injected anywhere are always refused,
documents without them always pass."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proximity_portainer.config import PortainerConfig
from proximity_portainer.source import PortainerSource

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.loader import load_source
from proximity_sdk.catalog.policy import compose_violations
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.plugins.sources import RawEntry


class _Source:
    def __init__(self, name: str, entries: list[dict[str, Any]]) -> None:
        self._name = name
        self._entries = entries

    @property
    def name(self) -> str:
        return self._name

    def list_entries(self) -> Iterator[RawEntry]:
        for n, data in enumerate(self._entries):
            yield RawEntry(f"memory:{self._name}#{n}", data)

    def get_entry(self, app_id: str) -> RawEntry | None:
        return None


class _NoPlugins(PluginManager):
    def __init__(self) -> None:
        super().__init__(entry_points=False)

    def catalog_sources(self) -> list[Any]:
        return []


def _entry(app_id: str, compose: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": app_id,
        "name": app_id,
        "version": "1",
        "description": "d",
        "category": "Test",
        "icon": None,
        "docker_compose": compose,
    }


def _web(**extra: Any) -> dict[str, Any]:
    return {"services": {"web": {"image": "nginx:1.27", "ports": ["80:80"], **extra}}}


HAZARDS: dict[str, tuple[dict[str, Any], str]] = {
    "privileged": (_web(privileged=True), "docker_compose.services.web.privileged"),
    "host-network": (_web(network_mode="host"), "docker_compose.services.web.network_mode"),
    "host-pid": (_web(pid="host"), "docker_compose.services.web.pid"),
    "bind-root": (_web(volumes=["/:/host"]), "docker_compose.services.web.volumes.0"),
    "docker-socket": (
        _web(volumes=["./data:/data", "/var/run/docker.sock:/var/run/docker.sock"]),
        "docker_compose.services.web.volumes.1",
    ),
    "cap-add": (_web(cap_add=["SYS_ADMIN"]), "docker_compose.services.web.cap_add"),
    "devices": (_web(devices=["/dev/sda:/dev/sda"]), "docker_compose.services.web.devices"),
}


@pytest.mark.parametrize("hazard", list(HAZARDS))
def test_an_untrusted_source_cannot_ask_for_host_access(hazard: str) -> None:
    compose, field = HAZARDS[hazard]
    safe = _entry("safe", _web(volumes=["./data:/usr/share/nginx/html", "cache:/cache"]))
    catalog = Catalog(plugins=_NoPlugins(), sources=[_Source("third-party", [safe, _entry("evil", compose)])])
    assert [app.id for app in catalog.list()] == ["safe"]
    [problem] = catalog.errors
    assert (problem.source, problem.app_id, problem.field) == ("third-party", "evil", field)
    assert "compose policy" in problem.message and "trusted_sources" in problem.message

    trusting = Catalog(
        plugins=_NoPlugins(),
        sources=[_Source("third-party", [_entry("evil", compose)])],
        trusted_sources=["third-party"],
    )
    assert [app.id for app in trusting.list()] == ["evil"]
    assert list(trusting.errors) == []


def test_the_portainer_converter_cannot_smuggle_root(tmp_path: Path) -> None:
    """The reproduction of the issue: a container template asking for privileged, host network
    and a bind of / goes through the converter and is refused at load."""
    templates = {
        "version": "2",
        "templates": [
            {
                "type": 1,
                "title": "Innocent",
                "name": "innocent",
                "image": "alpine:3",
                "privileged": True,
                "network": "host",
                "volumes": [{"container": "/host", "bind": "/"}],
            },
            {
                "type": 1,
                "title": "Fine",
                "name": "fine",
                "image": "nginx:1.27",
                "ports": ["8080:80/tcp"],
                "volumes": [{"container": "/data"}],
            },
        ],
    }
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(templates))
    config = PortainerConfig(
        locations=(str(path),), cache_dir=tmp_path / "cache", max_age=0, timeout=5, id_prefix="pt-"
    )
    source = PortainerSource(str(path), config=config)
    result = load_source(source)
    assert [app.id for app in result.apps] == ["pt-fine"]
    [problem] = result.problems
    assert problem.app_id == "pt-innocent"
    for field in ("privileged", "network_mode", "volumes.0"):
        assert f"docker_compose.services.innocent.{field}" in problem.message


# fuzzing ------------------------------------------------------------------------------------------

_NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
_SAFE_SEGMENT = st.sampled_from(["data", "config", "x", "."])


def _relative_inside(segments: list[str]) -> str:
    return "./" + "/".join(segments)


_safe_volume = st.one_of(
    st.builds(lambda name, target: f"{name}:/{target}", _NAME, _NAME),
    st.builds(
        lambda segs, target: f"{_relative_inside(segs)}:/{target}",
        st.lists(_SAFE_SEGMENT, min_size=1, max_size=4),
        _NAME,
    ),
    st.builds(
        lambda segs, target: {"type": "bind", "source": _relative_inside(segs), "target": f"/{target}"},
        st.lists(_SAFE_SEGMENT, min_size=1, max_size=3),
        _NAME,
    ),
    st.builds(lambda target: {"type": "tmpfs", "target": f"/{target}"}, _NAME),
    st.builds(lambda target: f"/{target}", _NAME),  # anonymous volume
)

_safe_service = st.fixed_dictionaries(
    {"image": st.sampled_from(["nginx:1.27", "postgres:16", "redis:7"])},
    optional={
        "ports": st.lists(st.integers(1, 65535).map(lambda p: f"{p}:{p}"), max_size=3),
        "environment": st.dictionaries(
            st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=10), max_size=3
        ),
        "volumes": st.lists(_safe_volume, max_size=4),
        "privileged": st.sampled_from([False, "false", 0, "no"]),
        "network_mode": st.sampled_from(["bridge", "none", "service:db"]),
        "cap_drop": st.just(["ALL"]),
        "restart": st.sampled_from(["unless-stopped", "always"]),
        "security_opt": st.just(["no-new-privileges:true"]),
    },
)

_HOST_PATHS = [
    "/",
    "/etc",
    "/root/.ssh",
    "~/.ssh",
    "../..",
    "./../x",
    "data/../../etc",
    "/proc",
    "/sys",
    "/var/run/docker.sock",
    "./docker.sock",
    "${HOME}",
    "${DATA:-./data}",
    "C:/Windows",
    "\\\\server\\x",
]
_TRUTHY = [True, "true", "TRUE", "yes", 1, "1", "on", "${PRIVILEGED}", "y"]
_NAMESPACE_VALUES = ["host", "HOST", " host ", "container:other", "${MODE}"]


def _hazard() -> st.SearchStrategy[tuple[str, Any]]:
    """(where: "service" key path or "top", value): one thing the policy must refuse."""
    return st.one_of(
        st.sampled_from(_TRUTHY).map(lambda v: ("privileged", v)),
        st.tuples(
            st.sampled_from(["network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup"]),
            st.sampled_from(_NAMESPACE_VALUES),
        ),
        st.sampled_from(["/dev/sda:/dev/sda", "/dev/kvm", "/dev/net/tun"]).map(lambda d: ("devices", [d])),
        st.sampled_from(["SYS_ADMIN", "NET_ADMIN", "ALL", "SYS_PTRACE"]).map(lambda c: ("cap_add", [c])),
        st.sampled_from(["apparmor=unconfined", "seccomp:unconfined", "label=disable", "systempaths=unconfined"]).map(
            lambda o: ("security_opt", [o])
        ),
        st.tuples(st.sampled_from(_HOST_PATHS), _NAME, st.sampled_from(["", ":ro", ":rw"])).map(
            lambda t: ("volume", f"{t[0]}:/{t[1]}{t[2]}")
        ),
        st.sampled_from(_HOST_PATHS).map(lambda p: ("volume", {"type": "bind", "source": p, "target": "/x"})),
        st.just(("volume", "${SPEC}")),
        st.sampled_from(_HOST_PATHS).map(lambda p: ("env_file", p)),
        st.sampled_from(["/", "/dev/sda1", "/srv"]).map(lambda d: ("top-volume", d)),
        st.sampled_from(["host", "${NET}"]).map(lambda n: ("top-network", n)),
        st.sampled_from(["/etc/shadow", "../secret"]).map(lambda f: ("top-config", f)),
    )


def _inject(document: dict[str, Any], service: str, hazard: tuple[str, Any]) -> None:
    key, value = hazard
    target = document["services"][service]
    if key == "volume":
        target["volumes"] = [*target.get("volumes", []), value]
    elif key == "top-volume":
        document["volumes"] = {
            "data": {"driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": value}}
        }
        target["volumes"] = [*target.get("volumes", []), "data:/data"]
    elif key == "top-network":
        document["networks"] = {"default": {"name": value, "external": True}}
    elif key == "top-config":
        document["configs"] = {"conf": {"file": value}}
    else:
        target[key] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(services=st.dictionaries(_NAME, _safe_service, min_size=1, max_size=3), data=st.data())
def test_fuzz_no_hazard_gets_through_an_untrusted_source(services: dict[str, Any], data: st.DataObject) -> None:
    document: dict[str, Any] = {"services": services}
    hazards = data.draw(st.lists(_hazard(), min_size=1, max_size=3))
    for hazard in hazards:
        _inject(document, data.draw(st.sampled_from(sorted(services))), hazard)
    assert compose_violations(document), document
    result = load_source(_Source("fuzz", [_entry("fuzzed", document)]))
    assert result.apps == []
    assert result.problems and result.problems[0].app_id == "fuzzed"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(services=st.dictionaries(_NAME, _safe_service, min_size=1, max_size=3))
def test_fuzz_documents_without_hazards_pass(services: dict[str, Any]) -> None:
    document = {"services": services}
    assert compose_violations(document) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "data", "x", "", "y"]), min_size=1, max_size=6))
def test_fuzz_relative_binds_are_refused_exactly_when_they_leave_the_app_directory(parts: list[str]) -> None:
    path = "./" + "/".join(parts)
    escapes = posixpath.normpath(path).split("/")[0] == ".."
    refused = bool(compose_violations(_web(volumes=[f"{path}:/data"])))
    assert refused == escapes, path
