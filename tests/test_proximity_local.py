"""`Proximity.local()`: hosts, nodes, settings and catalog through the facade, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from proximity_sdk._client import Proximity
from proximity_sdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    TLSError,
    ValidationError,
)
from proximity_sdk.models.ssh import SshAccess
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve, make_pki, serve_pve


@pytest.fixture
def px(database_url: str, tmp_path: Path) -> Iterator[Proximity]:
    with Proximity.local(
        database_url=database_url, data_dir=tmp_path / "data", secret_key=Fernet.generate_key(), entry_points=False
    ) as client:
        yield client


def _add(px: Proximity, pve: HarnessPve, ca: str, name: str = "pve") -> str:
    return px.hosts.add(name, url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=ca).id


def test_fresh_home_creates_database_and_key_and_lists_the_builtin_catalog(tmp_path: Path) -> None:
    """No argument at all: the user data dir is made, with the database and a 0600 key file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXIMITY_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    code = (
        "import json; from proximity_sdk._client import Proximity\n"
        "with Proximity.local() as px:\n"
        "    apps = px.catalog.list()\n"
        "    print(json.dumps({'apps': len(apps), 'url': px.store.url, 'hosts': len(px.hosts.list()),"
        " 'memory': px.settings.get().default_memory_mb}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    data_dir = tmp_path / ".local" / "share" / "proximity"
    assert seen["apps"] >= 60
    assert seen["hosts"] == 0
    assert seen["memory"] > 0
    assert str(data_dir / "proximity.db") in seen["url"]
    key = data_dir / "secret.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_add_host_checks_credentials_and_syncs_nodes(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    pve.add_node("pve2")
    host = px.hosts.add(
        "lab",
        url=pve.url,
        token_id=TOKEN_ID,
        token_secret=TOKEN_SECRET,
        ca_file=pve_ca,
        ssh=SshAccess(addresses={"pve1": "10.0.0.11"}),
    )
    assert host.is_default
    assert host.auth == "token"
    assert host.ca_pem is not None and host.ca_pem == Path(pve_ca).read_text()
    nodes = px.nodes.list()
    assert [(n.name, n.status) for n in nodes] == [("pve1", "online"), ("pve2", "online")]
    assert all(n.maxmem and n.maxmem > 0 and n.cpus for n in nodes)
    assert px.nodes.list("lab") == nodes
    assert px.hosts.get("lab") == host == px.hosts.get(host.id)
    assert "token_secret" not in repr(px.hosts.list()) and TOKEN_SECRET not in repr(px.hosts.list())


def test_wrong_credentials_store_nothing(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    with pytest.raises(AuthenticationError):
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret="wrong", ca_file=pve_ca)
    assert px.hosts.list() == []
    assert px.nodes.list() == []


@pytest.mark.pve_schema_exempt  # the first request never reaches the fake: TLS fails
def test_untrusted_certificate_is_refused(px: Proximity, pve: HarnessPve, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other_ca, _ = make_pki(tmp_path / "other")
    with pytest.raises(TLSError):
        px.hosts.add("lab", url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_file=other_ca)
    assert px.hosts.list() == []


def test_bad_input_is_refused_before_any_request(px: Proximity, pve: HarnessPve, pve_ca: str, tmp_path: Path) -> None:
    cases = [
        dict(url="pve1:8006", token_id=TOKEN_ID, token_secret="x", ca_file=pve_ca),
        dict(url=pve.url, token_id="root!nope", token_secret="x", ca_file=pve_ca),
        dict(url=pve.url, token_id=TOKEN_ID, token_secret="x", ca_file=str(tmp_path / "missing.pem")),
        dict(url=pve.url, token_id=TOKEN_ID, token_secret="x", user="root@pam", password="p"),
    ]
    for fields in cases:
        with pytest.raises(ValidationError):
            px.hosts.add("lab", **fields)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        px.hosts.add("Bad Name", url=pve.url, token_id=TOKEN_ID, token_secret="x", ca_file=pve_ca)
    assert pve.recorded == []
    assert px.hosts.list() == []


def test_password_auth_host(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    host = px.hosts.add("lab", url=pve.url, user="root@pam", password="secret", ca_file=pve_ca)
    assert host.auth == "password" and host.user == "root@pam"
    check = px.hosts.test("lab")
    assert check.ok and check.nodes == ["pve1"]


def test_host_test_reports_failures_without_raising(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    host_id = _add(px, pve, pve_ca)
    check = px.hosts.test(host_id)
    assert check.ok
    assert check.version == "9.0.10"
    assert check.online_nodes == ["pve1"]
    assert check.requests == 9  # version, nodes, pve1 version, /access/permissions on 6 paths (privileges)
    pve.apitokens[TOKEN_ID] = "revoked"
    check = px.hosts.test(host_id)
    assert not check.ok
    assert check.error_kind == "AuthenticationError"
    assert check.error and "token" in check.error.lower()
    with pytest.raises(NotFoundError):
        px.hosts.test("nope")


def test_sync_nodes_follows_the_cluster(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    host_id = _add(px, pve, pve_ca)
    pve.add_node("pve2")
    pve.add_node("pve3")
    assert [n.name for n in px.hosts.sync_nodes(host_id)] == ["pve1", "pve2", "pve3"]
    pve.set_node_offline("pve2")
    del pve.nodes["pve3"]
    nodes = px.hosts.sync_nodes()
    assert [(n.name, n.status) for n in nodes] == [("pve1", "online"), ("pve2", "offline")]
    assert nodes[1].pve_version is None


def test_several_hosts_one_default(px: Proximity, pve: HarnessPve, pve_pki: tuple[str, str], pve_ca: str) -> None:
    first = _add(px, pve, pve_ca, "alpha")
    with serve_pve(*pve_pki) as (other, _served):
        other.add_node("b2")
        second = _add(px, other, pve_ca, "beta")
        assert [h.name for h in px.hosts.list()] == ["alpha", "beta"]
        assert px.hosts.default().id == first
        assert px.hosts.set_default("beta").is_default
        assert [h.name for h in px.hosts.list()] == ["beta", "alpha"]
        assert [n.name for n in px.nodes.list("beta")] == ["b2", "pve1"]
        assert [n.name for n in px.nodes.list()] != []
        assert px.hosts.sync_nodes()[0].host_id == second
    with pytest.raises(AlreadyExistsError):
        _add(px, pve, pve_ca, "alpha")


def test_update_and_remove(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    host_id = _add(px, pve, pve_ca)
    pve.apitokens["root@pam!second"] = "another-secret"
    px.hosts.update(host_id, token_id="root@pam!second", token_secret="another-secret")
    assert px.hosts.test(host_id).ok  # the cached client was replaced
    px.hosts.update(host_id, token_secret="wrong")
    assert px.hosts.test(host_id).error_kind == "AuthenticationError"
    px.store.apps.create(owner_id=None, catalog_id="gitea", hostname="git-1", host_id=host_id, node="pve1")
    with pytest.raises(ConflictError):
        px.hosts.remove(host_id)
    assert px.hosts.get(host_id)


def test_remove_host_without_apps(px: Proximity, pve: HarnessPve, pve_ca: str) -> None:
    host_id = _add(px, pve, pve_ca)
    px.hosts.remove(host_id)
    assert px.hosts.list() == []
    assert px.nodes.list() == []
    with pytest.raises(NotFoundError):
        px.hosts.get(host_id)


def test_secret_is_unreadable_in_the_raw_database(tmp_path: Path, pve: HarnessPve, pve_ca: str) -> None:
    with Proximity.local(data_dir=tmp_path, entry_points=False) as px:
        _add(px, pve, pve_ca)
        assert px.hosts.test("pve").ok
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("proximity.db*"))
    assert TOKEN_ID.encode() in raw  # the identity is not secret ...
    assert TOKEN_SECRET.encode() not in raw  # ... the secret is encrypted


def test_settings_round_trip(px: Proximity) -> None:
    settings = px.settings.get()
    assert settings.memory_overcommit == 2.0
    updated = px.settings.update(default_cores=4, memory_overcommit=1.5)
    assert (updated.default_cores, updated.memory_overcommit) == (4, 1.5)
    assert px.settings.get() == updated
    with pytest.raises(ValidationError) as err:
        px.settings.update(memory_overcommit=0)
    assert err.value.field == "memory_overcommit"
    assert px.settings.get() == updated


def test_catalog_through_the_facade(px: Proximity, tmp_path: Path) -> None:
    assert px.catalog.get("gitea").name
    assert "gitea" in [a.id for a in px.catalog.search("git")]
    assert px.catalog.categories()
    assert px.catalog.stats().total_apps == len(px.catalog.list())
