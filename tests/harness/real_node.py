"""Harness: a real node: the sandbox's Proxmox in real mode (real LXC containers) and its node shell.

Fixtures (exported through ``__all__``), for tests marked ``real_node``:

- ``real_template`` (session): the cached Debian 12 template (:class:`Template`), built with
  debootstrap the first time (about 80 s; then instant). Also needs root, LXC and lxc-net's bridge:
  without them the test is skipped, or fails when the ``CI`` environment variable is set (CI must
  never count a skipped real-node tier as passing). ``scripts/real-node`` sets a machine up.
- ``real_templates`` (session): ``{12: ..., 13: ...}``, Debian 13 built too when missing (about 50 s).
- ``real_pve``: a started :class:`RealHarnessPve` (the harness's Proxmox whose containers are real
  LXC containers, tasks running at ``time_scale`` 1) with the template already in storage
  ``local`` (``real_pve.template_volid``), writing its node table for the ``pct`` stand-in.
  At teardown every LXC container it made is destroyed, and every request the test sent is
  schema-checked as the ``pve`` fixture does (markers ``pve_schema_exempt``, ``pve9_only``).
- ``real_ssh_access`` / ``real_node_shell``: the real sshd with each node at its own loopback
  address (pve1 127.0.0.1, pve2 127.0.0.2, pve3 127.0.0.3), so ``pct`` acts on that node's
  containers only; ``real_pve_client``: an API client for ``real_pve``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.shell import NodeShell
from proximity_sdk.sandbox._real import _lxc
from proximity_sdk.sandbox._real._pve import PREFIX, RealLxcMixin
from proximity_sdk.sandbox._real._templates import Template, build_debian_template, cached_templates
from tests.harness.pve import (
    HOST,
    PASSWORD,
    TOKEN_ID,
    TOKEN_SECRET,
    USER,
    HarnessPve,
    ServedPve,
    check_schema_at_teardown,
    token_client,
)
from tests.harness.sshd import NODE_ADDRESSES, Sshd, StandinState

__all__ = [
    "RealHarnessPve",
    "real_node_shell",
    "real_pve",
    "real_pve_client",
    "real_ssh_access",
    "real_template",
    "real_templates",
    "require_real_node",
]


def require_real_node() -> None:
    """Skip (or, with ``CI`` set, fail) unless this machine can run real containers."""
    problems = _lxc.missing()
    if not problems:
        return
    message = "real node unavailable: " + "; ".join(problems)
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: the real_node tier must run, not skip)", pytrace=False)
    pytest.skip(message)


class RealHarnessPve(RealLxcMixin, HarnessPve):  # type: ignore[misc]
    """The harness's Proxmox (request log, WARNINGS tasks, ...) with real LXC containers."""

    template_volid = ""


@pytest.fixture(scope="session")
def real_template() -> Template:
    require_real_node()
    _lxc.sweep_orphans(PREFIX)  # containers of test processes that were killed before their teardown
    return build_debian_template("bookworm")


@pytest.fixture(scope="session")
def real_templates(real_template: Template) -> dict[int, Template]:
    """Debian 12 and 13 templates by major version (Debian 13 built the first time: about 50 s)."""
    return {12: real_template, 13: build_debian_template("trixie")}


@pytest.fixture
def real_pve(
    request: pytest.FixtureRequest, real_template: Template, pve_pki: tuple[str, str], standin_state: StandinState
) -> Iterator[RealHarnessPve]:
    others = [t for t in cached_templates() if t.major != real_template.major]
    fake = RealHarnessPve(user=USER, password=PASSWORD, host=HOST, port=0, templates=[real_template, *others])
    fake.time_scale = 1.0  # real work takes seconds: tasks run beside the request, as on PVE
    fake.apitokens[TOKEN_ID] = TOKEN_SECRET
    fake.node_table = standin_state.path / "nodes.json"
    fake.node_root = standin_state.path / "root"
    fake.node_addresses = {address: node for node, address in NODE_ADDRESSES.items()}
    fake.nodes.clear()
    for node in NODE_ADDRESSES:
        fake.add_node(node)
    fake.template_volid = fake.add_template("local", real_template)
    served = ServedPve(fake, *pve_pki)
    fake.serving = served
    try:
        yield fake
    finally:
        try:
            served.stop()
        finally:
            fake.destroy_real_containers()
    check_schema_at_teardown(request, fake)  # as the `pve` fixture


@pytest.fixture
def real_pve_client(real_pve: RealHarnessPve, pve_ca: str) -> Iterator[ProxmoxClient]:
    client = token_client(real_pve, pve_ca, timeout=(5.0, 60.0))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def real_ssh_access(sshd: Sshd) -> SshAccess:
    return SshAccess(
        user=sshd.user,
        port=sshd.port,
        key_file=str(sshd.client_key),
        known_hosts=str(sshd.known_hosts),
        addresses=dict(NODE_ADDRESSES),
        connect_timeout=10,
    )


@pytest.fixture
def real_node_shell(real_pve: RealHarnessPve, real_ssh_access: SshAccess) -> Iterator[NodeShell]:
    with NodeShell(real_ssh_access) as shell:
        yield shell


def real_path(pve: Any, vmid: int, path: str) -> Path:
    """Where a file of real container ``vmid`` lies on the node (its directory root filesystem)."""
    return _lxc.rootfs(pve.lxc_name(vmid)) / path.lstrip("/")
