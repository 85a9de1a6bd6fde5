"""The rules behind OCI deploys, checked without a Proxmox: references, versions, plans, environments."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.catalog.render import render_project
from proximity_sdk.errors import ValidationError
from proximity_sdk.models._requests import REFERENCE_PATTERN, check_ports, check_reference
from proximity_sdk.operations.deploy.oci import catalog_plan, resolve_env
from proximity_sdk.proxmox._ctspec import _TEMPLATE_VOLID
from proximity_sdk.proxmox.oci import env_param, image_template_volid, parse_version
from tests.harness.pve_schema import schemas

SAMPLES = [
    "nginx:1.27",
    "docker.io/library/nginx:latest",
    "ghcr.io/owner/app:v1.2.3",
    "localhost:5000/a/b:tag",
    "registry.example.com:443/team/svc-name:2024.11_01",
    "a__b:x",
    "a---b:1",
    "my.image_name:1",
    "nginx",
    "Nginx:1",
    "nginx:",
    "nginx:-x",
    "nginx@sha256:" + "0" * 64,
    "/nginx:1",
    "ghcr.io//x:1",
    "-reg.io/x:1",
    "reg-.io/x:1",
    "a/b/c/d:" + "t" * 128,
    "a:" + "t" * 129,
    "nginx:1.27 ",
    "ngi nx:1",
]


def _schema_pattern() -> str:
    info = schemas()["9.1"].paths["/nodes/{node}/storage/{storage}/oci-registry-pull"]
    pattern = info["POST"]["parameters"]["properties"]["reference"]["pattern"]
    assert isinstance(pattern, str)
    return pattern


@pytest.mark.parametrize("reference", SAMPLES)
def test_reference_check_is_the_schemas_pattern(reference: str) -> None:
    schema = re.compile(_schema_pattern())
    assert bool(REFERENCE_PATTERN.match(reference)) == bool(schema.match(reference))
    if schema.match(reference):
        assert check_reference(reference) == reference
    else:
        with pytest.raises(ValidationError) as caught:
            check_reference(reference)
        assert caught.value.field == "reference"


def test_template_volume_names_are_valid_and_bounded() -> None:
    long = "registry.example.com/" + "/".join(["segment"] * 40) + ":1"
    for reference in ("nginx:1.27", "ghcr.io/owner/app:v1", long):
        volid = image_template_volid("local", reference)
        assert _TEMPLATE_VOLID.match(volid) and len(volid) < 255
    assert image_template_volid("local", long) != image_template_volid("local", long.replace(":1", ":2"))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("9.1.2", (9, 1, 2)),
        ("9.1", (9, 1, 0)),
        ("8.4.1", (8, 4, 1)),
        ("pve-manager/9.1.0/abc", (9, 1, 0)),
        ("9.1-1", (9, 1, 1)),
        ("fake", None),
        ("", None),
        (None, None),
        (9.1, None),
    ],
)
def test_version_parsing(text: object, parsed: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == parsed


def test_environment_templates_and_the_env_parameter() -> None:
    env = resolve_env(
        {"A": "${PW}", "B": "x$$y", "C": "${MISSING:-dflt}", "D": "$PW-$NOPE", "E": "${MISSING}"}, {"PW": "s3cret"}
    )
    assert env == {"A": "s3cret", "B": "x$y", "C": "dflt", "D": "s3cret-", "E": ""}
    assert env_param({"A": "1", "B": "two words"}) == "A=1\0B=two words"
    for bad in ({"1A": "x"}, {"A": "x\ny"}, {"A": "x\0y"}):
        with pytest.raises(ValidationError):
            env_param(bad)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Proximity.local(
        data_dir=tmp_path_factory.mktemp("px"), secret_key=Fernet.generate_key(), entry_points=False
    ) as px:
        yield px.catalog


@pytest.mark.parametrize(
    ("app_id", "why"),
    [
        ("gitea", "2 services"),
        ("traefik", "uses command"),
        ("homeassistant", "network_mode"),
    ],
)
def test_apps_that_need_compose_say_why(catalog: Any, app_id: str, why: str) -> None:
    entry = next(e for e in catalog.list() if e.id == app_id or app_id in e.id.replace("-", ""))
    rendered = render_project(entry)
    plan, reason = catalog_plan(entry, rendered.compose, rendered.env)
    assert plan is None and why in reason


def test_bind_mounts_need_compose(catalog: Any) -> None:
    entry = next(
        e
        for e in catalog.list()
        if any("docker.sock" in str(v) for s in e.services.values() for v in s.get("volumes") or ())
    )
    rendered = render_project(entry)
    plan, reason = catalog_plan(entry, rendered.compose, rendered.env)
    assert plan is None and "bind-mounts" in reason


def test_single_image_plan_keeps_secret_references_only(catalog: Any) -> None:
    entry = catalog.get("grafana")
    rendered = render_project(entry)
    plan, _ = catalog_plan(entry, rendered.compose, rendered.env)
    assert plan is not None and plan["image"] == "grafana/grafana:11.3.0" and plan["main_port"] == 3000
    assert plan["env"]["GF_SECURITY_ADMIN_PASSWORD"] == "${ADMIN_PASSWORD}"
    assert rendered.env["ADMIN_PASSWORD"] not in json.dumps(plan)


@pytest.mark.parametrize("ports", ["80", b"80", [0], [65536], [True], ["80"], [80.0], [80, -1]])
def test_check_ports_refuses_what_is_not_a_list_of_port_numbers(ports: Any) -> None:
    # one check for the local and the remote deploy_image: the remote refuses before any call
    with pytest.raises(ValidationError) as caught:
        check_ports(ports)
    assert caught.value.field == "ports"


@pytest.mark.parametrize("ports", [(), [1], [80, 443, 65535], (8080,)])
def test_check_ports_accepts_port_numbers(ports: Any) -> None:
    check_ports(ports)
