"""Proxmox hosts and their nodes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.host import Host, HostAdd, HostCredentials, HostUpdate, Node
from proximity_sdk.models.registries import RegistrySettings
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.store._common import StoreContext, validate_request
from proximity_sdk.store.crypto import SecretBox
from proximity_sdk.store.tables import AppRow, HostRow, NodeRow

__all__ = ["HostsRepository", "NodesRepository"]


def _host(row: HostRow) -> Host:
    return Host(
        id=row.id,
        name=row.name,
        url=row.url,
        auth=row.auth,
        token_id=row.token_id,
        user=row.user,
        verify_tls=row.verify_tls,
        ca_pem=row.ca_pem,
        ssh=SshAccess.model_validate(row.ssh) if row.ssh is not None else None,
        is_default=row.is_default,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _ssh_columns(ssh: SshAccess | None, box: SecretBox) -> tuple[dict[str, Any] | None, str | None]:
    """(the SSH settings to keep in plain JSON, the encrypted key): a key given as contents
    (the remote SDK sends it so) is a secret, a key file path is not."""
    if ssh is None:
        return None, None
    data = ssh.model_dump(mode="json")
    key = ssh.key_file
    if key is not None and key.lstrip().startswith("-----BEGIN"):
        data["key_file"] = None
        return data, box.encrypt(key)
    return data, None


def find_host(s: Session, id_or_name: str) -> HostRow:
    """The host with this id, else this name; NotFoundError if neither."""
    row = (
        s.get(HostRow, id_or_name) or s.execute(select(HostRow).where(HostRow.name == id_or_name)).scalar_one_or_none()
    )
    if row is None:
        raise NotFoundError(f"no host {id_or_name!r}", hint="List the hosts with px.hosts.list()")
    return row


def _lock_hosts(s: Session) -> None:
    """Serialize changes of the default flag: every host row locked, always in the same order
    (PostgreSQL; no deadlock between two switches). SQLite serializes through BEGIN IMMEDIATE."""
    s.execute(select(HostRow.id).order_by(HostRow.id).with_for_update()).all()


class HostsRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def add(self, request: HostAdd | None = None, /, **fields: Any) -> Host:
        """Register a host. The first host added becomes the default."""
        req = validate_request(HostAdd, request, fields, what="host")
        secret = req.token_secret if req.auth == "token" else req.password
        assert secret is not None  # HostAdd guarantees the pair
        ssh_json, ssh_key = _ssh_columns(req.ssh, self._ctx.box)
        for _attempt in range(2):
            try:
                with self._ctx.session(immediate=True) as s:
                    if s.execute(select(HostRow.id).where(HostRow.name == req.name)).first():
                        raise AlreadyExistsError(f"a host named {req.name!r} already exists")
                    first = s.execute(select(HostRow.id).limit(1)).first() is None
                    row = HostRow(
                        name=req.name,
                        url=req.url,
                        auth=req.auth,
                        token_id=req.token_id,
                        user=req.user,
                        secret=self._ctx.box.encrypt(secret.get_secret_value()),
                        verify_tls=req.verify_tls,
                        ca_pem=req.ca_pem,
                        ssh=ssh_json,
                        ssh_key=ssh_key,
                        is_default=first,
                    )
                    s.add(row)
                    s.flush()
                    return _host(row)
            except IntegrityError:
                # another process added a host at the same moment: either the same name, or
                # both wanted to become the first (default) host; by now the winner has committed,
                # so the second try sees it and adds this host as a non-default one
                with self._ctx.session() as s:
                    if s.execute(select(HostRow.id).where(HostRow.name == req.name)).first():
                        raise AlreadyExistsError(f"a host named {req.name!r} already exists") from None
        raise ConflictError(f"adding host {req.name!r} collided twice with concurrent changes", hint="Retry")

    def get(self, id_or_name: str) -> Host:
        with self._ctx.session() as s:
            return _host(find_host(s, id_or_name))

    def list(self) -> list[Host]:
        """Every host, the default first, then by name. No secrets in the results."""
        with self._ctx.session() as s:
            rows = s.execute(select(HostRow).order_by(HostRow.is_default.desc(), HostRow.name)).scalars()
            return [_host(r) for r in rows]

    def default(self) -> Host:
        with self._ctx.session() as s:
            row = s.execute(select(HostRow).where(HostRow.is_default.is_(True))).scalar_one_or_none()
            if row is None:
                raise NotFoundError("no host registered yet", hint="Add one with px.hosts.add(...)")
            return _host(row)

    def resolve(self, id_or_name: str | None) -> Host:
        """The named host, or the default one when None."""
        return self.default() if id_or_name is None else self.get(id_or_name)

    def set_default(self, id_or_name: str) -> Host:
        """Make this host the default, in one transaction (never zero or two defaults)."""
        with self._ctx.session(immediate=True) as s:
            _lock_hosts(s)
            row = find_host(s, id_or_name)
            # two statements, in this order: PostgreSQL checks the unique index row by row
            s.execute(update(HostRow).where(HostRow.is_default.is_(True)).values(is_default=False))
            s.execute(update(HostRow).where(HostRow.id == row.id).values(is_default=True))
            s.refresh(row)
            return _host(row)

    def update(self, id_or_name: str, request: HostUpdate | None = None, /, **fields: Any) -> Host:
        """Change some of a host's fields. Switching auth kind needs the whole new pair."""
        req = validate_request(HostUpdate, request, fields, what="host update")
        given = req.model_fields_set
        try:
            with self._ctx.session(immediate=True) as s:
                row = find_host(s, id_or_name)
                if req.name is not None and req.name != row.name:
                    if s.execute(select(HostRow.id).where(HostRow.name == req.name)).first():
                        raise AlreadyExistsError(f"a host named {req.name!r} already exists")
                    row.name = req.name
                if req.url is not None:
                    row.url = req.url
                if req.verify_tls is not None:
                    row.verify_tls = req.verify_tls
                if "ca_pem" in given:
                    row.ca_pem = req.ca_pem
                if "ssh" in given:
                    row.ssh, row.ssh_key = _ssh_columns(req.ssh, self._ctx.box)
                self._update_auth(row, req)
                s.flush()
                return _host(row)
        except IntegrityError:
            raise AlreadyExistsError(f"a host named {req.name!r} already exists") from None

    def _update_auth(self, row: HostRow, req: HostUpdate) -> None:
        token = req.token_id is not None or req.token_secret is not None
        password = req.user is not None or req.password is not None
        kind = "token" if token else "password" if password else None
        if kind is None:
            return
        ident = req.token_id if kind == "token" else req.user
        secret: SecretStr | None = req.token_secret if kind == "token" else req.password
        if kind != row.auth and (ident is None or secret is None):
            pair = "token_id and token_secret" if kind == "token" else "user and password"
            raise ValidationError(
                f"switching host {row.name!r} to {kind} auth needs both {pair}",
                field="token_secret" if kind == "token" else "password",
            )
        row.auth = kind
        if kind == "token":
            row.token_id = ident or row.token_id
            row.user = None
        else:
            row.user = ident or row.user
            row.token_id = None
        if secret is not None:
            row.secret = self._ctx.box.encrypt(secret.get_secret_value())

    def remove(self, id_or_name: str) -> None:
        """Forget a host. Refused while apps still live on it; its node records go with it.
        When it was the default, the next host by name becomes the default."""
        try:
            with self._ctx.session(immediate=True) as s:
                _lock_hosts(s)
                row = find_host(s, id_or_name)
                apps = s.execute(select(func.count()).where(AppRow.host_id == row.id)).scalar_one()
                if apps:
                    raise ConflictError(
                        f"host {row.name!r} still has {apps} app(s)",
                        hint="Delete its apps first (px.apps.delete), then remove it",
                    )
                was_default = row.is_default
                s.delete(row)
                s.flush()
                if was_default:
                    successor = s.execute(select(HostRow).order_by(HostRow.name).limit(1)).scalar_one_or_none()
                    if successor is not None:
                        successor.is_default = True
        except IntegrityError:
            # an app was created on this host between our check and the delete
            raise ConflictError(
                f"host {id_or_name!r} gained an app while being removed", hint="Delete its apps first"
            ) from None

    def credentials(self, id_or_name: str) -> HostCredentials:
        """The decrypted credentials, for the Proxmox client only. Secrets stay ``SecretStr``."""
        with self._ctx.session() as s:
            row = find_host(s, id_or_name)
            secret = SecretStr(self._ctx.box.decrypt(row.secret, what=f"the credentials of host {row.name!r}"))
            return HostCredentials(
                host_id=row.id,
                name=row.name,
                url=row.url,
                auth=row.auth,
                token_id=row.token_id,
                token_secret=secret if row.auth == "token" else None,
                user=row.user,
                password=secret if row.auth == "password" else None,
                verify_tls=row.verify_tls,
                ca_pem=row.ca_pem,
                ssh=self._ssh_with_key(row),
            )

    def set_registries(self, id_or_name: str, registries: RegistrySettings | None) -> None:
        """Replace the host's registry settings (None or empty: Docker's defaults), encrypted."""
        with self._ctx.session(immediate=True) as s:
            row = find_host(s, id_or_name)
            row.registries = (
                None if registries is None or registries.empty else self._ctx.box.encrypt(registries.stored())
            )

    def registries(self, id_or_name: str) -> RegistrySettings:
        """The host's registry settings, decrypted (passwords stay ``SecretStr``)."""
        with self._ctx.session() as s:
            row = find_host(s, id_or_name)
            if row.registries is None:
                return RegistrySettings()
            text = self._ctx.box.decrypt(row.registries, what=f"the registry settings of host {row.name!r}")
            return RegistrySettings.model_validate_json(text)

    def _ssh_with_key(self, row: HostRow) -> SshAccess | None:
        if row.ssh is None:
            return None
        if row.ssh_key is None:
            return SshAccess.model_validate(row.ssh)
        key = self._ctx.box.decrypt(row.ssh_key, what=f"the SSH key of host {row.name!r}")
        return SshAccess.model_validate({**row.ssh, "key_file": key})


def _node(row: NodeRow) -> Node:
    return Node(
        host_id=row.host_id,
        name=row.name,
        status=row.status,
        cpus=row.cpus,
        maxmem=row.maxmem,
        mem=row.mem,
        maxdisk=row.maxdisk,
        disk=row.disk,
        pve_version=row.pve_version,
        last_seen_at=row.last_seen_at,
    )


_NODE_FIELDS = ("status", "cpus", "maxmem", "mem", "maxdisk", "disk", "pve_version", "last_seen_at")


class NodesRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def replace_for_host(self, host_id: str, nodes: Sequence[Node]) -> list[Node]:
        """Make the stored nodes of ``host_id`` exactly ``nodes`` (from a node sync)."""
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValidationError(f"node names repeat in {names}", field="nodes")
        for n in nodes:
            if n.host_id != host_id:
                raise ValidationError(f"node {n.name!r} belongs to host {n.host_id!r}, not {host_id!r}")
        with self._ctx.session(immediate=True) as s:
            host = find_host(s, host_id)
            existing = {r.name: r for r in s.execute(select(NodeRow).where(NodeRow.host_id == host.id)).scalars()}
            s.execute(delete(NodeRow).where(NodeRow.host_id == host.id, NodeRow.name.not_in(names)))
            for n in nodes:
                row = existing.get(n.name) or NodeRow(host_id=host.id, name=n.name)
                for field in _NODE_FIELDS:
                    setattr(row, field, getattr(n, field))
                s.add(row)
        return self.list(host_id)

    def list(self, host_id: str | None = None) -> list[Node]:
        """Nodes of one host (id or name), or of every host; by host, then name."""
        with self._ctx.session() as s:
            query = select(NodeRow).order_by(NodeRow.host_id, NodeRow.name)
            if host_id is not None:
                query = query.where(NodeRow.host_id == find_host(s, host_id).id)
            return [_node(r) for r in s.execute(query).scalars()]

    def get(self, host_id: str, name: str) -> Node:
        with self._ctx.session() as s:
            host = find_host(s, host_id)
            row = s.execute(
                select(NodeRow).where(NodeRow.host_id == host.id, NodeRow.name == name)
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError(
                    f"host {host.name!r} has no node {name!r}",
                    hint="Sync the host's nodes (px.hosts.sync_nodes)",
                )
            return _node(row)
