"""Hosts and nodes: add, list, get, update, remove; the default host; removal refused while apps live."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.host import HostAdd, HostUpdate, Node
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.store import Store


def _add(store: Store, name: str, /, **extra: Any) -> Any:
    fields: dict[str, Any] = {
        "name": name,
        "url": f"https://{name}.lan:8006",
        "token_id": "root@pam!px",
        "token_secret": f"secret-of-{name}",
    }
    fields.update(extra)
    return store.hosts.add(**fields)


def test_add_get_list(store: Store) -> None:
    ca = trustme.CA().cert_pem.bytes().decode()
    ssh = SshAccess(user="root", port=2222, addresses={"pve2": "10.0.0.12"})
    host = _add(store, "pve1", url="https://pve1.lan:8006/api2/json/", ca_pem=ca, ssh=ssh, verify_tls=False)
    assert host.url == "https://pve1.lan:8006"
    assert host.auth == "token"
    assert host.is_default is True
    assert host.ca_pem == ca
    assert host.ssh == ssh
    assert host.created_at.tzinfo is not None
    assert store.hosts.get(host.id) == host
    assert store.hosts.get("pve1") == host
    assert store.hosts.list() == [host]
    second = store.hosts.add(HostAdd(name="alpha", url="https://10.0.0.2:8006", user="root@pam", password="pw"))
    assert second.auth == "password"
    assert second.is_default is False
    assert [h.name for h in store.hosts.list()] == ["pve1", "alpha"], "the default first, then by name"


def test_duplicate_name_is_refused(store: Store) -> None:
    _add(store, "pve1")
    with pytest.raises(AlreadyExistsError, match="'pve1' already exists"):
        _add(store, "pve1")


def test_unknown_host(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no host 'nope'"):
        store.hosts.get("nope")
    with pytest.raises(NotFoundError, match="no host registered"):
        store.hosts.default()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "PVE_1"}, "name", "pattern"),
        ({"url": "pve1:8006"}, "url", "not a Proxmox URL"),
        ({"url": "https://pve1:8006/some/where"}, "url", "has a path"),
        ({"url": "https://pve1:99999"}, "url", "invalid port"),
        ({"token_id": "root!px"}, "token_id", "user@realm!tokenname"),
        ({"ca_pem": "/etc/pve/pve-root-ca.pem"}, "ca_pem", "not a path"),
        (
            {"ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "ca_pem",
            "not a valid PEM",
        ),
        ({"user": "root@pam", "password": "x"}, None, "not both"),
        ({"token_secret": None}, None, "needs both token_id and token_secret"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_host_is_refused(store: Store, fields: dict[str, Any], field: str | None, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        _add(store, "pve1", **fields)
    assert info.value.field == field
    assert store.hosts.list() == []


def test_credentials_require_a_pair() -> None:
    with pytest.raises(Exception, match="credentials missing"):
        HostAdd(name="pve1", url="https://pve1:8006")


def test_default_host_switch_is_atomic(store: Store) -> None:
    first = _add(store, "pve1")
    second = _add(store, "pve2")
    assert store.hosts.default().id == first.id
    switched = store.hosts.set_default("pve2")
    assert switched.id == second.id
    assert switched.is_default is True
    assert [h.name for h in store.hosts.list() if h.is_default] == ["pve2"]
    assert store.hosts.resolve(None).id == second.id
    assert store.hosts.resolve("pve1").id == first.id


def test_concurrent_default_switches_leave_exactly_one_default(store: Store) -> None:
    names = [f"pve{i}" for i in range(4)]
    for name in names:
        _add(store, name)
    errors: list[BaseException] = []

    def flip(name: str) -> None:
        try:
            for _ in range(5):
                store.hosts.set_default(name)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(h.is_default for h in store.hosts.list()) == 1


def test_update(store: Store) -> None:
    host = _add(store, "pve1")
    renamed = store.hosts.update("pve1", name="pve-main", verify_tls=False, url="https://10.1.1.1:8006")
    assert (renamed.id, renamed.name, renamed.verify_tls, renamed.url) == (
        host.id,
        "pve-main",
        False,
        "https://10.1.1.1:8006",
    )
    assert renamed.updated_at >= host.updated_at
    # a new token secret only: the token id stays
    store.hosts.update(host.id, HostUpdate(token_secret="rotated"))
    creds = store.hosts.credentials(host.id)
    assert creds.token_id == "root@pam!px"
    assert creds.token_secret is not None
    assert creds.token_secret.get_secret_value() == "rotated"
    # switching to password auth needs user and password together
    with pytest.raises(ValidationError, match="needs both user and password") as info:
        store.hosts.update(host.id, user="root@pam")
    assert info.value.field == "password"
    switched = store.hosts.update(host.id, user="root@pam", password="pw")
    assert (switched.auth, switched.user, switched.token_id) == ("password", "root@pam", None)
    creds = store.hosts.credentials(host.id)
    assert creds.token_secret is None
    assert creds.password is not None
    assert creds.password.get_secret_value() == "pw"


def test_update_clears_ca_only_when_asked(store: Store) -> None:
    ca = trustme.CA().cert_pem.bytes().decode()
    _add(store, "pve1", ca_pem=ca)
    assert store.hosts.update("pve1", verify_tls=True).ca_pem == ca
    assert store.hosts.update("pve1", ca_pem=None).ca_pem is None


def test_update_to_a_taken_name_is_refused(store: Store) -> None:
    _add(store, "pve1")
    _add(store, "pve2")
    with pytest.raises(AlreadyExistsError):
        store.hosts.update("pve2", name="pve1")
    assert {h.name for h in store.hosts.list()} == {"pve1", "pve2"}


def test_remove_and_default_moves_on(store: Store) -> None:
    _add(store, "pve1")
    _add(store, "pve3")
    _add(store, "pve2")
    store.hosts.remove("pve1")
    with pytest.raises(NotFoundError):
        store.hosts.get("pve1")
    assert store.hosts.default().name == "pve2"
    store.hosts.remove("pve2")
    store.hosts.remove("pve3")
    assert store.hosts.list() == []
    with pytest.raises(NotFoundError):
        store.hosts.remove("pve3")


def test_remove_is_refused_while_apps_exist(store: Store) -> None:
    host = _add(store, "pve1")
    app = store.apps.create(hostname="git-1", host_id=host.id)
    assert store.apps.count_for_host("pve1") == 1
    with pytest.raises(ConflictError, match="still has 1 app") as info:
        store.hosts.remove("pve1")
    assert "Delete its apps" in info.value.hint
    assert store.hosts.get("pve1").id == host.id
    store.apps.delete(app.id)
    store.hosts.remove("pve1")
    assert store.hosts.list() == []


def _node(host_id: str, name: str, **extra: Any) -> Node:
    fields: dict[str, Any] = {"status": "online", "cpus": 8, "maxmem": 32 << 30, **extra}
    return Node(host_id=host_id, name=name, **fields)


def test_nodes_replace_and_list(store: Store) -> None:
    h1 = _add(store, "pve1")
    h2 = _add(store, "pve2")
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.nodes.replace_for_host(h1.id, [_node(h1.id, "n1", last_seen_at=seen), _node(h1.id, "n2")])
    store.nodes.replace_for_host(h2.id, [_node(h2.id, "n1", pve_version="9.1.1")])
    assert [n.name for n in store.nodes.list(h1.id)] == ["n1", "n2"]
    assert store.nodes.get("pve1", "n1").last_seen_at == seen
    assert len(store.nodes.list()) == 3
    # a later sync: n2 left the cluster, n1 went offline, n3 joined
    store.nodes.replace_for_host(h1.id, [_node(h1.id, "n1", status="offline"), _node(h1.id, "n3")])
    nodes = {n.name: n for n in store.nodes.list("pve1")}
    assert set(nodes) == {"n1", "n3"}
    assert nodes["n1"].status == "offline"
    assert not nodes["n1"].online
    assert nodes["n3"].maxmem == 32 << 30
    with pytest.raises(NotFoundError, match="no node 'n2'"):
        store.nodes.get("pve1", "n2")
    # nodes go with their host
    store.hosts.remove("pve1")
    assert [n.host_id for n in store.nodes.list()] == [h2.id]


def test_nodes_input_is_checked(store: Store) -> None:
    h1 = _add(store, "pve1")
    with pytest.raises(ValidationError, match="repeat"):
        store.nodes.replace_for_host(h1.id, [_node(h1.id, "n1"), _node(h1.id, "n1")])
    with pytest.raises(ValidationError, match="belongs to host"):
        store.nodes.replace_for_host(h1.id, [_node("other", "n1")])


def test_concurrent_first_hosts_make_exactly_one_default(store: Store) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def add(name: str) -> None:
        try:
            start.wait()
            _add(store, name)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"pve{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    hosts = store.hosts.list()
    assert len(hosts) == 4
    assert sum(h.is_default for h in hosts) == 1
