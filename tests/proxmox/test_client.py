"""The API client against fakepve over HTTPS: auth, TLS, retries, typed reads, threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from proximity_sdk.errors import AuthenticationError, TLSError, TransientError, UnreachableError
from proximity_sdk.proxmox.client import ProxmoxClient
from tests.harness.pve import PASSWORD, TOKEN_ID, TOKEN_SECRET, USER, HarnessPve, make_pki, token_client


def _logins(pve: HarnessPve) -> int:
    return sum(1 for r in pve.recorded if r.path.endswith("/access/ticket"))


def test_token_auth_reads_version(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    assert pve_client.version().version == pve.version
    assert pve_client.auth_kind == "token"
    assert _logins(pve) == 0
    assert pve_client.request_count == 1


def test_ticket_auth_logs_in_once(pve_password_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    assert pve_password_client.version().version == pve.version
    assert [c.vmid for c in pve_password_client.lxc_list("pve1")] == [100]
    assert _logins(pve) == 1
    assert pve_password_client.request_count == 3  # login + 2 reads


def test_ticket_auth_write_carries_csrf(pve_password_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    upid = pve_password_client.post("/nodes/pve1/lxc/100/status/start")
    assert upid.startswith("UPID:pve1:")
    assert pve.ct(100).status == "running"


def test_revoked_ticket_is_renewed_and_the_request_repeated(
    pve_password_client: ProxmoxClient, pve: HarnessPve
) -> None:
    pve.add_ct(100, name="web")
    pve_password_client.version()
    pve.revoke_tickets()
    # A write: a 401 means PVE did not run it, so repeating it after the new login is safe.
    upid = pve_password_client.post("/nodes/pve1/lxc/100/status/start")
    assert upid.startswith("UPID:")
    assert _logins(pve) == 2
    assert pve.ct(100).status == "running"


def test_ticket_that_expires_mid_run_is_renewed(pve: HarnessPve, pve_ca: str) -> None:
    pve.ticket_ttl = 0.3
    with ProxmoxClient(url=pve.url, user=USER, password=PASSWORD, ca_file=pve_ca) as client:
        client.version()
        time.sleep(0.4)
        assert client.nodes()[0].node == "pve1"
    assert _logins(pve) == 2


def test_ticket_is_renewed_by_age_before_expiry(pve: HarnessPve, pve_ca: str) -> None:
    with ProxmoxClient(url=pve.url, user=USER, password=PASSWORD, ca_file=pve_ca, ticket_renew_after=0.2) as client:
        client.version()
        time.sleep(0.25)
        client.version()
        assert client.login_count == 2
    # No 401 on the way: renewal came first.
    statuses = [r.path for r in pve.recorded]
    assert statuses.count("/api2/json/access/ticket") == 2


def test_wrong_password_is_authentication_error(pve: HarnessPve, pve_ca: str) -> None:
    client = ProxmoxClient(url=pve.url, user=USER, password="wrong", ca_file=pve_ca)
    with pytest.raises(AuthenticationError) as info:
        client.version()
    assert info.value.status == 401


def test_wrong_token_secret_is_authentication_error(pve: HarnessPve, pve_ca: str) -> None:
    client = ProxmoxClient(url=pve.url, token_id=TOKEN_ID, token_secret="not-the-secret", ca_file=pve_ca)
    with pytest.raises(AuthenticationError) as info:
        client.nodes()
    assert info.value.status == 401
    assert info.value.method == "GET"
    assert info.value.path == "/nodes"


def test_wrong_ca_is_tls_error(pve: HarnessPve, tmp_path: Path) -> None:
    other_ca, _key = make_pki(tmp_path)
    client = token_client(pve, other_ca)
    with pytest.raises(TLSError) as info:
        client.version()
    assert "certificate" in str(info.value).lower()
    assert pve.recorded == []  # the handshake failed: nothing reached the API


def test_system_trust_store_does_not_trust_the_fake(pve: HarnessPve) -> None:
    client = ProxmoxClient(url=pve.url, user=USER, password=PASSWORD)
    with pytest.raises(TLSError):
        client.version()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_tls_false_connects_deliberately(pve: HarnessPve) -> None:
    client = ProxmoxClient(url=pve.url, user=USER, password=PASSWORD, verify_tls=False)
    assert client.version().version == pve.version


def test_closed_port_is_unreachable(pve_ca: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ProxmoxClient(
        url=f"https://127.0.0.1:{port}",
        token_id=TOKEN_ID,
        token_secret="x",
        ca_file=pve_ca,
        timeout=(1.0, 1.0),
    )
    with pytest.raises(UnreachableError) as info:
        client.version()
    assert not isinstance(info.value, TLSError)


def test_reads_are_retried_on_transient_faults(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.fail("GET", "/version", 596, "Connection reset during TLS", times=2)
    assert pve_client.version().version == pve.version
    assert pve_client.request_count == 3


def test_reads_give_up_after_the_retries(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.fail("GET", "/version", 500, "proxy loop detected - got timeout")
    with pytest.raises(TransientError):
        pve_client.version()
    assert pve_client.request_count == 4  # 1 + 3 retries


def test_writes_are_never_retried(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.fail("POST", "/nodes/pve1/lxc/100/status/start", 596, "Connection reset during TLS", times=1)
    with pytest.raises(TransientError) as info:
        pve_client.post("/nodes/pve1/lxc/100/status/start")
    assert info.value.method == "POST"
    assert pve_client.request_count == 1
    assert pve.ct(100).status == "stopped"


@pytest.mark.pve_schema_exempt  # dropped connections are recorded with a half-read body
def test_connection_resets_on_reads_are_retried(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.flaky_network(drop_rate=0.3)
    pve._random.seed(7)  # flaky_network's seed only applies at start(): make the drops repeatable
    for _ in range(5):
        assert pve_client.nodes()[0].node == "pve1"
    assert pve_client.request_count > 5


def test_typed_reads(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(
        100,
        name="web",
        status="running",
        config={"net0": "name=eth0,bridge=vmbr0,ip=dhcp", "tags": "proximity;web", "cores": 2},
    )
    pve.add_ct(101, name="db", config={"net0": "name=eth0,bridge=vmbr0,ip=10.0.0.51/24"})
    pve.store_file("local", "debian-12.tar.zst", 1024, content="vztmpl")

    nodes = pve_client.nodes()
    assert [(n.node, n.online) for n in nodes] == [("pve1", True)]
    assert pve_client.node_status("pve1").uptime >= 0
    cts = {r.vmid: r for r in pve_client.cluster_resources(kind="vm")}
    assert cts[100].status == "running"
    assert cts[101].status == "stopped"
    assert {r.id for r in pve_client.cluster_resources(kind="storage")} >= {"storage/pve1/local"}
    assert pve_client.lxc_status("pve1", 100).running
    config = pve_client.lxc_config("pve1", 100)
    assert config.hostname == "web"
    assert config.cores == 2
    assert config.tag_list == ["proximity", "web"]
    assert config.net_options("net0")["ip"] == "dhcp"
    assert "rootfs" in config.mounts
    eth0 = next(i for i in pve_client.lxc_interfaces("pve1", 100) if i.name == "eth0")
    assert eth0.ipv4 == pve.lease_for(100)
    assert pve_client.lxc_interfaces("pve1", 101) == []  # not running: no interfaces
    storages = {s.storage: s for s in pve_client.storage_list("pve1")}
    assert "vztmpl" in storages["local"].content_types
    volumes = pve_client.storage_content("pve1", "local", content="vztmpl")
    assert [v.volid for v in volumes] == ["local:vztmpl/debian-12.tar.zst"]
    assert pve_client.next_vmid() == 102


def test_one_client_shared_by_threads_logs_in_once(pve_password_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert pve_password_client.lxc_status("pve1", 100).vmid == 100
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _logins(pve) == 1
    assert pve_password_client.request_count == 31


def test_tickets_revoked_under_threads_relogin_once(pve_password_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve_password_client.version()
    pve.revoke_tickets()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            pve_password_client.nodes()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Threads that saw the 401 after another thread already logged in reuse its ticket.
    assert _logins(pve) == 2


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_PROXY_VARIABLES, "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_host(
    pve: HarnessPve, pve_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    proxied = token_client(pve, pve_ca, read_retries=0)
    with pytest.raises(UnreachableError):
        proxied.version()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = token_client(pve, pve_ca, read_retries=0)
    assert direct.version().version == pve.version


def test_the_environment_is_read_once_not_at_every_request(
    pve: HarnessPve, pve_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests reads the proxy variables again at every request of a session that trusts the
    environment (a measurable share of a request's CPU); the client reads them when it connects."""
    _no_proxy_environment(monkeypatch)
    client = token_client(pve, pve_ca, read_retries=0)
    assert client.version().version == pve.version
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert client.version().version == pve.version  # still direct: a new client would use the proxy


def test_requests_ca_bundle_verifies_a_client_given_no_ca_file(
    pve: HarnessPve, pve_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_environment(monkeypatch)
    plain = ProxmoxClient(url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, read_retries=0)
    with pytest.raises(TLSError):
        plain.version()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pve_ca)
    trusting = ProxmoxClient(url=pve.url, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, read_retries=0)
    assert trusting.version().version == pve.version
