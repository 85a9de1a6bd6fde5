"""What the remote client reads is what the local client over the agent's store reads, model for
model; what it writes (hosts, settings, ownership) lands there as if done locally."""

from __future__ import annotations

from pathlib import Path

from proximity_sdk._client import Proximity
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.models.user import Role
from tests.harness.pve import TOKEN_ID, TOKEN_SECRET, HarnessPve
from tests.remote._agent import RunningAgent

WAIT = 60


def test_reads_equal_the_local_ones(running: RunningAgent) -> None:
    local = running.px
    with running.connect() as px:
        app = px.apps.deploy("gitea", hostname="web1").wait(timeout=WAIT)
        backup = px.backups.create(app.id).wait(timeout=WAIT)
        assert px.apps.list() == local.apps.list() == [app]
        assert list(px.apps.iter(search="web")) == list(local.apps.iter(search="web"))
        assert px.backups.list() == local.backups.list() == [backup]
        assert px.backups.stats() == local.backups.stats()
        assert px.operations.list() == local.operations.list()
        assert px.nodes.list() == local.nodes.list()
        assert px.nodes.storages("pve1") == local.nodes.storages("pve1")
        assert px.catalog.list() == local.catalog.list()
        assert px.catalog.search("database") == local.catalog.search("database")
        assert px.catalog.categories() == local.catalog.categories()
        assert px.catalog.stats() == local.catalog.stats() == px.catalog.reload()
        assert px.catalog.origin("gitea") == local.catalog.origin("gitea")
        assert px.settings.get() == local.settings.get()
        assert px.backups.targets.kinds() == local.backups.targets.kinds()
        assert px.apps.discover() == local.apps.discover() == []
        # a host's SSH key and known_hosts files are the agent's: they do not come back
        for remote_host, local_host in zip(px.hosts.list(), local.hosts.list(), strict=True):
            assert local_host.ssh is not None and remote_host.ssh is not None
            assert remote_host.ssh.key_file is None
            assert remote_host == local_host.model_copy(
                update={"ssh": local_host.ssh.model_copy(update={"key_file": None, "known_hosts": None})}
            )

        # every list the remote client returns is a Listing (a list with an HTML table for notebooks)
        for listing in (
            px.apps.list(),
            px.apps.discover(),
            px.apps.updates(pull=False),
            px.hosts.list(),
            px.nodes.list(),
            px.nodes.storages("pve1"),
            px.hosts.sync_nodes(),
            px.catalog.list(),
            px.catalog.search("git"),
            px.catalog.categories(),
            px.catalog.errors,
            px.catalog.shadowed,
            px.backups.list(),
            px.backups.schedules(),
            px.backups.targets.list(),
            px.backups.targets.kinds(),
            px.backups.run_due(),
            px.operations.list(),
        ):
            assert type(listing) is Listing

        assert [h.host for h in px.maintenance.reconcile().hosts] == ["lab"]
        assert px.maintenance.janitor(hard_grace_seconds=600).errors == []
        assert px.maintenance.sync_nodes("lab").hosts[0].nodes == ["pve1"]


def test_writes_land_on_the_agent(running: RunningAgent, pve: HarnessPve, pve_ca: str, tmp_path: Path) -> None:
    local = running.px
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pve_ca if pve_ca.startswith("-----") else Path(pve_ca).read_text())
    with running.connect() as px:
        spare = px.hosts.add(
            "spare",
            url=pve.url,
            token_id=TOKEN_ID,
            token_secret=TOKEN_SECRET,
            ca_file=ca_file,
            ssh=SshAccess(user="root", known_hosts=None),
        )
        assert local.hosts.get("spare") == spare and spare.ca_pem == ca_file.read_text()
        assert not spare.is_default and px.hosts.set_default("spare").is_default
        assert px.hosts.default().name == "spare"
        moved = px.hosts.update("spare", url=pve.url + "/", verify_tls=True)
        assert moved.url == pve.url and local.hosts.get("spare").updated_at == moved.updated_at
        assert [n.name for n in px.hosts.sync_nodes("spare")] == ["pve1"]
        px.hosts.set_default("lab")
        px.hosts.remove("spare")
        assert [h.name for h in local.hosts.list()] == ["lab"]

        updated = px.settings.update(default_cores=3, timezone="Europe/Paris")
        assert updated == local.settings.get() and updated.default_cores == 3
        assert px.settings.update(timezone=None).timezone is None

        target = px.backups.targets.add(name="nas", kind="proxmox", options={"storage": "local"})
        assert px.backups.targets.list() == [target] == local.backups.targets.list()
        assert px.backups.targets.get("nas") == target
        px.backups.targets.remove("nas")
        assert local.backups.targets.list() == []

    user = local.store.users.create("alice", role=Role.MEMBER)
    _, token = local.store.users.issue_token(user.id, name="cli")
    with Proximity.connect(running.target, token=token) as alice, running.connect() as admin:
        mine = alice.apps.deploy("gitea", hostname="alice1").wait(timeout=WAIT)
        assert mine.owner_id == user.id and mine.status == AppStatus.RUNNING
        theirs = admin.apps.deploy("gitea", hostname="admin1").wait(timeout=WAIT)
        assert alice.apps.list() == [mine]
        assert sorted(a.hostname for a in admin.apps.list()) == ["admin1", "alice1"]
        assert admin.apps.list(owner_id=user.id) == [mine]
        assert [o.app_id for o in alice.operations.list()] == [mine.id]
        copy = alice.apps.clone(mine.id, hostname="alice2").wait(timeout=WAIT)
        assert copy.owner_id == user.id
        assert theirs.id not in {a.id for a in alice.apps.list()}
