"""Node placement: the capacity math (pure) and the choice from live /cluster/resources (fakepve)."""

from __future__ import annotations

import pytest

from proximity_sdk.errors import ConflictError, ValidationError
from proximity_sdk.models.proxmox import ClusterResource
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.placement import NodeCapacity, choose_node, node_capacities, pick_node
from tests.harness.pve import HarnessPve

GIB = 1024**3
MIB = 1024**2


def _node(name: str, maxmem_gib: int | None, status: str = "online") -> ClusterResource:
    return ClusterResource(
        id=f"node/{name}",
        type="node",
        node=name,
        status=status,
        maxmem=None if maxmem_gib is None else maxmem_gib * GIB,
    )


def _guest(vmid: int, node: str, memory_mb: int, *, kind: str = "lxc", template: bool = False) -> ClusterResource:
    return ClusterResource(
        id=f"{kind}/{vmid}", type=kind, node=node, vmid=vmid, maxmem=memory_mb * MIB, template=template
    )


def test_capacity_counts_every_non_template_guest_and_the_overcommit() -> None:
    resources = [
        _node("a", 8),
        _node("b", 16),
        _guest(100, "a", 4096),
        _guest(101, "a", 2048, kind="qemu"),
        _guest(102, "a", 8192, template=True),  # templates never run: not promised
        _guest(103, "b", 1024),
        ClusterResource(id="storage/a/local", type="storage", node="a", storage="local"),
    ]
    caps = {c.node: c for c in node_capacities(resources, overcommit=1.5)}
    assert caps["a"].capacity_mb == 12288
    assert caps["a"].promised_mb == 6144
    assert caps["a"].guests == 2
    assert caps["a"].free_mb == 6144
    assert caps["b"].capacity_mb == 24576 and caps["b"].free_mb == 23552


def test_fits_exactly_at_the_limit_and_not_one_mib_more() -> None:
    cap = node_capacities([_node("a", 8), _guest(100, "a", 8192)], overcommit=2.0)
    assert choose_node(cap, memory_mb=8192).node == "a"
    with pytest.raises(ConflictError, match="no online node has 8193 MiB"):
        choose_node(cap, memory_mb=8193)


def test_overcommit_decides_whether_a_full_node_still_fits() -> None:
    resources = [_node("a", 8), _guest(100, "a", 8192)]
    with pytest.raises(ConflictError):
        choose_node(node_capacities(resources, overcommit=1.0), memory_mb=512)
    assert choose_node(node_capacities(resources, overcommit=1.25), memory_mb=512).node == "a"


def test_best_node_is_the_one_with_most_unpromised_memory_not_most_memory() -> None:
    resources = [
        _node("big", 32),
        _node("small", 8),
        _guest(100, "big", 30 * 1024),
        _guest(101, "big", 30 * 1024),
    ]
    decision = choose_node(node_capacities(resources, overcommit=2.0), memory_mb=2048)
    # big: 65536 - 61440 = 4096 free; small: 16384 free
    assert decision.node == "small"
    assert decision.free_mb == 16384
    assert decision.free_after_mb == 14336
    assert "most unpromised memory" in decision.reason
    # 16384 MiB on an 8 GiB node: the reason says the overcommit makes it
    assert "(16384 MiB: 8192 MiB of RAM x 2 overcommit, 0 MiB promised)" in decision.reason


def test_ties_go_by_name_and_offline_or_excluded_nodes_are_skipped() -> None:
    resources = [_node("c", 8), _node("b", 8), _node("a", 64, status="offline"), _node("d", None)]
    caps = node_capacities(resources, overcommit=2.0)
    assert choose_node(caps, memory_mb=512).node == "b"
    assert choose_node(caps, memory_mb=512, exclude={"b"}).node == "c"
    with pytest.raises(ConflictError, match=r"excluded: b, c"):
        choose_node(caps, memory_mb=512, exclude={"b", "c"})


def test_nodes_to_avoid_are_passed_over_while_another_fits_and_taken_when_none_does() -> None:
    resources = [_node("a", 16), _node("b", 8), _node("c", 8), _guest(100, "c", 6 * 1024)]
    caps = node_capacities(resources, overcommit=1.0)
    assert choose_node(caps, memory_mb=512).node == "a"
    # a's slots are all taken by this process: b, the next by memory, and the reason says why not a
    decision = choose_node(caps, memory_mb=512, avoid={"a"})
    assert decision.node == "b"
    assert "of 2 that fit with a mutation slot free (passed over: a, where every slot is taken)" in decision.reason
    # c was passed over too, but b beats it on memory anyway: the reason names only a
    assert "passed over: a," in choose_node(caps, memory_mb=512, avoid={"a", "c"}).reason
    # only an avoided node fits: it is taken (a slot frees up later), and nothing is "passed over"
    only = choose_node(caps, memory_mb=12 * 1024, avoid={"a"})
    assert only.node == "a" and "passed over" not in only.reason
    # every node avoided: memory decides, as without avoid
    assert choose_node(caps, memory_mb=512, avoid={"a", "b", "c"}).node == "a"
    # an explicit node is taken as asked; an excluded node is never taken, an avoided one may be
    assert choose_node(caps, memory_mb=512, node="a", avoid={"a"}).node == "a"
    assert choose_node(caps, memory_mb=512, exclude={"b"}, avoid={"a"}).node == "c"


def test_nothing_fits_lists_every_node_with_its_figures() -> None:
    resources = [_node("a", 8), _node("b", 8, status="offline"), _guest(100, "a", 15 * 1024)]
    with pytest.raises(ConflictError) as info:
        choose_node(node_capacities(resources, overcommit=2.0), memory_mb=4096)
    text = str(info.value)
    assert "a: 1024 MiB free of 16384 MiB" in text
    assert "15360 MiB promised to 1 guests" in text
    assert "b: offline" in text
    assert "raise memory_overcommit" in text


def test_explicit_node_must_exist_be_online_and_fit() -> None:
    resources = [_node("a", 8), _node("b", 8, status="offline"), _guest(100, "a", 16 * 1024)]
    caps = node_capacities(resources, overcommit=2.0)
    with pytest.raises(ValidationError, match="node 'zz' is not in the cluster") as missing:
        choose_node(caps, memory_mb=512, node="zz")
    assert missing.value.field == "node" and "a, b" in str(missing.value)
    with pytest.raises(ConflictError, match="node 'b' is offline"):
        choose_node(caps, memory_mb=512, node="b")
    with pytest.raises(ConflictError, match=r"node 'a' cannot take 512 MiB more: a: 0 MiB free of 16384"):
        choose_node(caps, memory_mb=512, node="a")
    with pytest.raises(ValidationError, match="not a valid Proxmox node name"):
        choose_node(caps, memory_mb=512, node="bad name")


def test_inputs_are_checked() -> None:
    with pytest.raises(ValidationError, match="overcommit"):
        node_capacities([], overcommit=0)
    with pytest.raises(ValidationError, match="memory_mb"):
        choose_node([], memory_mb=8)
    cap = NodeCapacity(node="x", status="online", memory_mb=0, capacity_mb=0, promised_mb=0, guests=0)
    assert not cap.fits(16)
    assert "no memory figures" in cap.describe()


def test_pick_node_reads_quorum_and_cluster_resources_once(pve: HarnessPve, pve_client: ProxmoxClient) -> None:
    pve.add_node("pve2")
    pve.add_node("pve3", online=False)
    # fakepve gives every node 8 GiB: capacity 16 GiB at overcommit 2
    pve.add_ct(100, node="pve1", config={"memory": 6144})
    pve.add_ct(101, node="pve1", config={"memory": 2048})
    pve.add_ct(102, node="pve2", config={"memory": 4096})
    before = pve_client.request_count
    decision = pick_node(pve_client, memory_mb=2048, overcommit=2.0)
    assert pve_client.request_count - before == 2  # /cluster/status (quorum), /cluster/resources
    assert decision.node == "pve2"
    assert decision.free_mb == 16384 - 4096
    assert [c.node for c in decision.candidates] == ["pve1", "pve2", "pve3"]

    # overcommit 1.0: pve1 is full (8 GiB promised of 8), pve2 has 4 GiB
    with pytest.raises(ConflictError, match="pve1: 0 MiB free of 8192"):
        pick_node(pve_client, memory_mb=6144, overcommit=1.0)
    assert pick_node(pve_client, memory_mb=1024, overcommit=2.0, node="pve1").node == "pve1"
    with pytest.raises(ConflictError, match="node 'pve3' is offline"):
        pick_node(pve_client, memory_mb=1024, overcommit=2.0, node="pve3")
