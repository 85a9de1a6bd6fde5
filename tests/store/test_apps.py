"""App records: create, get, list with filters and pages, update, uniqueness per host, secrets."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from proximity_sdk.errors import AlreadyExistsError, NotFoundError, ValidationError
from proximity_sdk.models.app import AppStatus, Port
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.models.resources import Resources
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import AppRow, OperationRow, PortRow


@pytest.fixture
def hosts(store: Store) -> tuple[str, str]:
    a = store.hosts.add(name="pve1", url="https://pve1:8006", token_id="root@pam!px", token_secret="t1")
    b = store.hosts.add(name="pve2", url="https://pve2:8006", token_id="root@pam!px", token_secret="t2")
    return a.id, b.id


def test_create_and_get(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(
        hostname="git-1",
        host_id="pve1",
        catalog_id="gitea",
        node="n1",
        vmid=105,
        resources=Resources(cores=2, memory_mb=2048, disk_gb=16),
        ports=[Port(service="web", port=3000), Port(service="ssh", port=22)],
        config={"environment": {"TZ": "UTC"}},
    )
    assert app.host_id == hosts[0]
    assert app.status is AppStatus.DEPLOYING
    assert app.resources == Resources(cores=2, memory_mb=2048, disk_gb=16)
    assert [p.port for p in app.ports] == [3000, 22]
    assert store.apps.get(app.id) == app
    with pytest.raises(NotFoundError):
        store.apps.get("missing")


def test_hostname_and_vmid_are_unique_per_host(store: Store, hosts: tuple[str, str]) -> None:
    store.apps.create(hostname="git-1", host_id="pve1", vmid=105)
    with pytest.raises(AlreadyExistsError, match="'git-1' already exists"):
        store.apps.create(hostname="git-1", host_id="pve1")
    with pytest.raises(AlreadyExistsError, match="VMID 105"):
        store.apps.create(hostname="git-2", host_id="pve1", vmid=105)
    # another host has its own names and VMIDs
    store.apps.create(hostname="git-1", host_id="pve2", vmid=105)
    assert store.apps.count() == 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hostname": "Git_1"}, "hostname"),
        ({"hostname": "-git"}, "hostname"),
        ({"vmid": 99}, "vmid"),
        ({"ports": [{"service": "web", "port": 70000}]}, "ports.0.port"),
        ({"owner": "x"}, "owner"),
    ],
)
def test_invalid_apps_are_refused(store: Store, hosts: tuple[str, str], fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.apps.create(**{"hostname": "ok", "host_id": "pve1", **fields})
    assert info.value.field == field


def test_list_filters_and_pages(store: Store, hosts: tuple[str, str]) -> None:
    for i in range(7):
        store.apps.create(hostname=f"git-{i}", host_id="pve1", catalog_id="gitea")
    store.apps.create(hostname="wiki", host_id="pve2", catalog_id="Wiki.js", status=AppStatus.RUNNING)
    assert store.apps.count() == 8
    assert [a.hostname for a in store.apps.list(status="running")] == ["wiki"]
    assert store.apps.count(search="GIT") == 7
    assert [a.hostname for a in store.apps.list(search="wiki.JS")] == ["wiki"]
    assert store.apps.count(search="%") == 0, "wildcards in search are literal"
    assert store.apps.count(host_id="pve2") == 1
    pages = [store.apps.list(offset=o, limit=3) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 2]
    ids = [a.id for p in pages for a in p]
    assert len(set(ids)) == 8, "pages neither repeat nor skip"
    with pytest.raises(ValidationError, match="limit") as info:
        store.apps.list(limit=0)
    assert info.value.field == "limit"
    with pytest.raises(ValidationError, match="offset"):
        store.apps.list(offset=-1)
    with pytest.raises(ValidationError, match="status") as info:
        store.apps.list(status="sleeping")
    assert info.value.field == "status"


@pytest.mark.parametrize("status", [None, "running"])
@pytest.mark.parametrize("search", [None, "git", "_", "%", "/", "a_b"])
def test_every_filter_and_page_shape_lists_what_the_filters_say(
    store: Store, hosts: tuple[str, str], status: str | None, search: str | None
) -> None:
    """list() and count() under every combination of filters, paged by cursor and by offset,
    against the same filters applied here to every app: a wildcard in the search matches only
    itself, and no value leaks from one call into the next (the statements are built once per
    shape of filter, the values are parameters)."""
    owner = store.users.create("ann").id
    catalog_ids = ["gitea", "a_b", "axb", "a%b", "x/y", None]
    for i in range(12):
        store.apps.create(
            hostname=f"app-{i}",
            host_id=hosts[i % 2],
            catalog_id=catalog_ids[i % len(catalog_ids)],
            status=AppStatus.RUNNING if i % 3 == 0 else AppStatus.STOPPED,
            owner_id=owner if i % 4 < 2 else None,
        )
    every = store.apps.list(limit=100)
    for host_id in (None, hosts[1]):
        for owner_id in (None, owner):
            term = (search or "").lower()
            expected = [
                a.hostname
                for a in every
                if (status is None or a.status.value == status)
                and (not search or term in a.hostname.lower() or term in (a.catalog_id or "").lower())
                and (host_id is None or a.host_id == host_id)
                and (owner_id is None or a.owner_id == owner_id)
            ]
            filters = {"status": status, "search": search, "host_id": host_id, "owner_id": owner_id}
            assert store.apps.count(**filters) == len(expected), filters
            by_offset = [a.hostname for o in range(0, 12, 5) for a in store.apps.list(**filters, offset=o, limit=5)]
            assert by_offset == expected, filters
            by_cursor: list[str] = []
            page = store.apps.list(**filters, limit=2)
            while page:
                by_cursor += [a.hostname for a in page]
                page = store.apps.list(**filters, limit=2, after=(page[-1].created_at, page[-1].id))
            assert by_cursor == expected, filters


def test_update_stamps_status_change(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1")
    running = store.apps.update(app.id, status=AppStatus.RUNNING, address="10.0.0.5", url="http://10.0.0.5:3000")
    assert running.status is AppStatus.RUNNING
    assert running.status_changed_at > app.status_changed_at
    same = store.apps.update(app.id, status="running", node="n2")
    assert same.status_changed_at == running.status_changed_at, "no change of status, no new stamp"
    assert same.node == "n2"
    assert same.address == "10.0.0.5"
    cleared = store.apps.update(app.id, address=None, ports=[Port(service="web", port=8080)])
    assert cleared.address is None
    assert [p.port for p in cleared.ports] == [8080]
    store.apps.create(hostname="git-2", host_id="pve1", vmid=200)
    with pytest.raises(AlreadyExistsError):
        store.apps.update(app.id, vmid=200)


def test_delete_takes_ports_and_secrets_along(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1", ports=[Port(service="web", port=80)])
    store.apps.set_secrets(app.id, {"DB_PASSWORD": "x"})
    store.apps.delete(app.id)
    with pytest.raises(NotFoundError):
        store.apps.secrets(app.id)
    assert store.apps.count() == 0
    # the same name and ports are free again
    store.apps.create(hostname="git-1", host_id="pve1", ports=[Port(service="web", port=80)])


def test_secrets_round_trip_and_replace(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1", root_password="r00t")
    store.apps.set_secrets(app.id, {"A": "1", "B": "2"})
    store.apps.set_secrets(app.id, {"B": "3"})
    assert {k: v.get_secret_value() for k, v in store.apps.secrets(app.id).items()} == {"A": "1", "B": "3"}
    root = store.apps.root_password(app.id)
    assert root is not None
    assert root.get_secret_value() == "r00t"
    with pytest.raises(ValidationError):
        store.apps.set_secrets(app.id, {"not a name": "x"})


def test_one_unfinished_operation_per_app(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1")
    with store.session() as s:
        s.add(OperationRow(kind="deploy", app_id=app.id, status=OperationStatus.SUCCEEDED))
        s.add(OperationRow(kind="start", app_id=app.id, status=OperationStatus.RUNNING))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(OperationRow(kind="stop", app_id=app.id, status=OperationStatus.PENDING))
    with store.session() as s:
        s.add(OperationRow(kind="adopt", host_id=hosts[0], vmid=300, status=OperationStatus.PENDING))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(OperationRow(kind="adopt", host_id=hosts[0], vmid=300, status=OperationStatus.RUNNING))


def test_setting_the_same_ports_again_and_changing_them(store: Store, hosts: tuple[str, str]) -> None:
    ports = (Port(service="web", port=3000), Port(service="web", port=22))
    app = store.apps.create(hostname="git-1", host_id=hosts[0], ports=ports)
    assert store.apps.update(app.id, ports=ports).ports == ports  # used to collide with itself
    moved = (Port(service="web", port=3000), Port(service="ssh", port=2222))
    assert store.apps.update(app.id, ports=moved).ports == moved
    assert store.apps.update(app.id, ports=()).ports == ()


def test_a_bad_row_never_reaches_a_caller_even_when_its_parts_were_seen_before(
    store: Store, hosts: tuple[str, str]
) -> None:
    # ports and sizes are validated once per distinct value and the models shared (apps_repo):
    # a value the models refuse must still be refused on every read, by get and by list
    good = store.apps.create(hostname="good", host_id="pve1", ports=[Port(service="web", port=3000)])
    bad = store.apps.create(hostname="bad", host_id="pve1", ports=[Port(service="web", port=3000)])
    assert store.apps.get(good.id).ports == store.apps.get(bad.id).ports
    with store.session() as s:
        s.execute(update(PortRow).where(PortRow.app_id == bad.id).values(port=70000))
        s.execute(update(AppRow).where(AppRow.id == good.id).values(cores=0))
    for _ in range(2):
        with pytest.raises(pydantic.ValidationError, match="port"):
            store.apps.get(bad.id)
        with pytest.raises(pydantic.ValidationError, match="cores"):
            store.apps.get(good.id)
        with pytest.raises(pydantic.ValidationError):
            store.apps.list()
    shared = store.apps.create(hostname="third", host_id="pve1", ports=[Port(service="web", port=3000)]).ports[0]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        shared.port = 1  # type: ignore[misc]  # one app cannot change another's port


def test_patch_changes_what_update_changes_and_returns_nothing(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1", ports=[Port(service="web", port=80)])
    store.apps.patch(app.id, status=AppStatus.RUNNING, address="10.0.0.5", vmid=150)
    running = store.apps.get(app.id)
    assert (running.status, running.address, running.vmid) == (AppStatus.RUNNING, "10.0.0.5", 150)
    assert running.status_changed_at > app.status_changed_at
    assert running.updated_at > app.updated_at
    store.apps.patch(app.id, status="running", node="n2", resources=Resources(cores=4, memory_mb=1024))
    same = store.apps.get(app.id)
    assert same.status_changed_at == running.status_changed_at, "no change of status, no new stamp"
    assert (same.node, same.resources, same.address) == ("n2", Resources(cores=4, memory_mb=1024), "10.0.0.5")
    ports = (Port(service="web", port=80), Port(service="ssh", port=2222))
    store.apps.patch(app.id, ports=ports, address=None, config={"runtime": "oci"})
    changed = store.apps.get(app.id)
    assert (changed.ports, changed.address, changed.config) == (ports, None, {"runtime": "oci"})
    store.apps.patch(app.id, ports=())
    assert store.apps.get(app.id).ports == ()
    store.apps.patch(app.id, root_password="s3cret")
    root = store.apps.root_password(app.id)
    assert root is not None
    assert root.get_secret_value() == "s3cret"
    assert store.apps.get(app.id).status is AppStatus.RUNNING


def test_patch_refuses_what_update_refuses(store: Store, hosts: tuple[str, str]) -> None:
    app = store.apps.create(hostname="git-1", host_id="pve1", vmid=150)
    store.apps.create(hostname="git-2", host_id="pve1", vmid=200)
    store.apps.create(hostname="git-3", host_id="pve2", vmid=300)
    with pytest.raises(AlreadyExistsError, match="VMID 200"):
        store.apps.patch(app.id, vmid=200)
    with pytest.raises(AlreadyExistsError, match="'git-2' already exists"):
        store.apps.patch(app.id, hostname="git-2")
    store.apps.patch(app.id, vmid=300, hostname="git-3")  # another host's VMID and name are free here
    with pytest.raises(NotFoundError):
        store.apps.patch("missing", status=AppStatus.ERROR)
    with pytest.raises(NotFoundError):
        store.apps.patch("missing", vmid=400)
    with pytest.raises(ValidationError, match="listed twice"):
        store.apps.patch(app.id, ports=[Port(service="a", port=80), Port(service="b", port=80)])
    with pytest.raises(ValidationError) as info:
        store.apps.patch(app.id, vmid=99)
    assert info.value.field == "vmid"
    unchanged = store.apps.get(app.id)
    assert (unchanged.vmid, unchanged.hostname, unchanged.ports) == (300, "git-3", ())


def test_unborn_lists_the_placed_apps_being_deployed_or_cloned(store: Store, hosts: tuple[str, str]) -> None:
    """Placement's in-flight query: only deploying or cloning apps of the host that have a node,
    with their VMID (or none yet) and their memory (None: the settings' default)."""
    deploying = store.apps.create(hostname="a", host_id="pve1", node="n1", resources=Resources(memory_mb=2048))
    cloning = store.apps.create(hostname="b", host_id="pve1", node="n2", vmid=120, status=AppStatus.CLONING)
    store.apps.create(hostname="c", host_id="pve1")  # not placed yet: no node to count it on
    store.apps.create(hostname="d", host_id="pve1", node="n1", vmid=121, status=AppStatus.RUNNING)
    store.apps.create(hostname="e", host_id="pve1", node="n1", status=AppStatus.ERROR)
    store.apps.create(hostname="f", host_id="pve2", node="n1")  # another host
    unborn = {a.id: a for a in store.apps.unborn(hosts[0])}
    assert set(unborn) == {deploying.id, cloning.id}
    assert (unborn[deploying.id].node, unborn[deploying.id].vmid, unborn[deploying.id].memory_mb) == ("n1", None, 2048)
    assert (unborn[cloning.id].node, unborn[cloning.id].vmid, unborn[cloning.id].memory_mb) == ("n2", 120, None)
    # more than a page of apps.list: every one is counted
    for i in range(1005):
        store.apps.create(hostname=f"x{i}", host_id="pve2", node="n9", resources=Resources(memory_mb=16))
    assert len(store.apps.unborn(hosts[1])) == 1006
    before = utcnow()  # the other apps' statuses were set before this
    store.apps.update(deploying.id, status=AppStatus.RUNNING)
    assert {a.id for a in store.apps.unborn(hosts[0])} == {cloning.id}
    # changed_since: also the placed apps whose status changed since then, whatever it is now
    assert {a.id for a in store.apps.unborn(hosts[0], changed_since=before)} == {deploying.id, cloning.id}
    later = store.apps.get(deploying.id).status_changed_at + timedelta(microseconds=1)
    assert {a.id for a in store.apps.unborn(hosts[0], changed_since=later)} == {cloning.id}


def test_a_node_patched_in_is_counted_as_unborn_there(store: Store, hosts: tuple[str, str]) -> None:
    """Placement stores its choice with ``patch(node=...)``: the next placement's query sees it."""
    app = store.apps.create(hostname="a", host_id="pve1", resources=Resources(memory_mb=2048), config={"k": 1})
    store.apps.patch(app.id, node="n2")
    after = store.apps.get(app.id)
    assert after.node == "n2"
    assert after.updated_at >= app.updated_at
    assert after.model_copy(update={"node": None, "updated_at": app.updated_at}) == app
    assert [a.node for a in store.apps.unborn(hosts[0])] == ["n2"]
    with pytest.raises(NotFoundError):
        store.apps.patch("missing", node="n1")
