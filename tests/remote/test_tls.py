"""Proximity.connect over TLS with a client certificate: the CA, the certificate and its key are
files read by the client (trustme makes the PKI). A refused handshake is a clear TLSError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography.fernet import Fernet

from proximity_agent.server import ServerOptions
from proximity_sdk._client import Proximity
from proximity_sdk.errors import TLSError, UnreachableError, ValidationError
from tests.remote._agent import RunningAgent, running_agent


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("notebook@example.org")
    stranger = other_ca.issue_cert("someone@example.org")
    files = {
        "ca": ca.cert_pem,
        "other_ca": other_ca.cert_pem,
        "server_cert": server.cert_chain_pems[0],
        "server_key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
        "stranger_cert": stranger.cert_chain_pems[0],
        "stranger_key": stranger.private_key_pem,
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        blob.write_to_path(str(paths[name]))
    return paths


@pytest.fixture
def tls_agent(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningAgent]:
    """An agent requiring client certificates signed by the CA, over an empty Proximity."""
    options = ServerOptions(
        port=0, tls_cert=str(pki["server_cert"]), tls_key=str(pki["server_key"]), client_ca=str(pki["ca"])
    )
    with (
        Proximity.local(data_dir=tmp_path / "px", secret_key=Fernet.generate_key(), entry_points=False) as px,
        running_agent(px, options=options) as agent,
    ):
        yield agent


def test_tls_with_a_client_certificate(tls_agent: RunningAgent, pki: dict[str, Path]) -> None:
    with tls_agent.connect(ca_file=pki["ca"], cert_file=str(pki["client_cert"]), key_file=pki["client_key"]) as px:
        assert repr(px) == f"<Proximity remote {tls_agent.target}>"
        assert px.hosts.list() == []
        assert px.settings.get() == tls_agent.px.settings.get()


def test_an_untrusted_agent_or_a_missing_client_certificate_is_refused(
    tls_agent: RunningAgent, pki: dict[str, Path]
) -> None:
    with (
        tls_agent.connect(
            ca_file=pki["other_ca"], cert_file=pki["client_cert"], key_file=pki["client_key"], timeout=5
        ) as px,
        pytest.raises(UnreachableError) as untrusted,
    ):
        px.hosts.list()
    assert isinstance(untrusted.value, TLSError) and "ca_file" in untrusted.value.hint

    for cert, key in ((None, None), (pki["stranger_cert"], pki["stranger_key"])):
        with (
            tls_agent.connect(ca_file=pki["ca"], cert_file=cert, key_file=key, timeout=5) as px,
            pytest.raises(UnreachableError) as refused,
        ):
            px.hosts.list()
        assert tls_agent.target in str(refused.value)


def test_files_are_checked_before_any_call(tmp_path: Path, pki: dict[str, Path]) -> None:
    with pytest.raises(ValidationError) as missing:
        Proximity.connect("agent.example:50051", token="t", ca_file=tmp_path / "nope.pem")
    assert missing.value.field == "ca_file"
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("hello")
    with pytest.raises(ValidationError) as wrong:
        Proximity.connect("agent.example:50051", token="t", cert_file=pki["client_cert"], key_file=not_pem)
    assert wrong.value.field == "key_file"
    with pytest.raises(ValidationError) as half:
        Proximity.connect("agent.example:50051", token="t", cert_file=pki["client_cert"])
    assert half.value.field == "key_file"
    with pytest.raises(ValidationError) as no_token:
        Proximity.connect("agent.example:50051", token="")
    assert no_token.value.field == "token"
    # no file and a remote target: TLS with the system's CAs, never plaintext
    with Proximity.connect("agent.example:50051", token="t") as px:
        assert "plaintext" not in repr(px)
