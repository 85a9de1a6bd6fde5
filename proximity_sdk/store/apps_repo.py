"""App records: create, read, list with filters and pages, update, and their encrypted secrets."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import (
    ColumnElement,
    Dialect,
    Select,
    Text,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import NullType

from proximity_sdk.errors import AlreadyExistsError, NotFoundError, ValidationError
from proximity_sdk.models.app import App, AppStatus, Port
from proximity_sdk.models.resources import Resources
from proximity_sdk.store._common import StoreContext, validate_request
from proximity_sdk.store._keyset import Cursor, after_condition, checked_cursor
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.hosts_repo import find_host
from proximity_sdk.store.tables import AppRow, AppSecretRow, PortRow

__all__ = ["MAX_PAGE_SIZE", "AppCreate", "AppPatch", "AppsRepository", "UnbornApp"]

MAX_PAGE_SIZE = 1000
HOSTNAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # one RFC 1123 label, lower case
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


class AppCreate(BaseModel):
    """Request (internal, from operations): a new app record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostname: str = Field(pattern=HOSTNAME_PATTERN)
    host_id: str
    status: AppStatus = AppStatus.DEPLOYING
    id: str | None = None
    catalog_id: str | None = None
    catalog_version: str | None = None
    owner_id: str | None = None
    node: str | None = None
    vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    address: str | None = None
    url: str | None = None
    resources: Resources = Field(default_factory=Resources)
    ports: tuple[Port, ...] = ()
    config: dict[str, Any] = Field(default_factory=dict)
    adopted: bool = False
    root_password: SecretStr | None = None


class AppPatch(BaseModel):
    """Request (internal): change some fields of an app; fields not given stay.
    Changing ``status`` also stamps ``status_changed_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: AppStatus | None = None
    hostname: str | None = Field(default=None, pattern=HOSTNAME_PATTERN)
    node: str | None = None
    vmid: int | None = Field(default=None, ge=100, le=999_999_999)
    address: str | None = None
    url: str | None = None
    resources: Resources | None = None
    ports: tuple[Port, ...] | None = None
    config: dict[str, Any] | None = None
    catalog_version: str | None = None
    owner_id: str | None = None
    root_password: SecretStr | None = None


class UnbornApp(BaseModel):
    """An app being deployed or cloned, as placement counts it: where it goes and its memory
    (``memory_mb`` None: the settings' default)."""

    model_config = ConfigDict(frozen=True)

    id: str
    node: str
    vmid: int | None
    memory_mb: int | None


_Q = TypeVar("_Q", bound=Select[Any])

_PLAIN_FIELDS = ("hostname", "node", "vmid", "address", "url", "config", "catalog_version", "owner_id")


# Most apps share their ports and sizes with others (one catalog app, one size): frozen models,
# so one validated instance serves every row with the same values. A page of 100 apps made 300
# models of these; bounded, and a value the models refuse is not kept (it raises every time).
@functools.lru_cache(maxsize=4096)
def _port(service: str, port: int, protocol: str) -> Port:
    return Port(service=service, port=port, protocol=protocol)


@functools.lru_cache(maxsize=1024)
def _resources(cores: int | None, memory_mb: int | None, swap_mb: int | None, disk_gb: int | None) -> Resources:
    return Resources(cores=cores, memory_mb=memory_mb, swap_mb=swap_mb, disk_gb=disk_gb)


# What an App is read from: every column but the encrypted root password, which no read needs,
# each as the driver gives it (no type conversion: see _AppCache), the config as the JSON text the
# database holds. The statements are built once: building a select of 20 columns cost more than
# running it.
_APPS = AppRow.__table__
_PORTS = PortRow.__table__
_READ = [c for c in _APPS.c if c.name not in ("root_password", "config")]
_APP_SELECT = typing.cast(
    Select[Any],
    select(
        *(type_coerce(c, NullType()).label(c.name) for c in _READ),
        type_coerce(cast(_APPS.c.config, Text), NullType()).label("config"),
    ),
)
_APP_BY_ID = _APP_SELECT.where(_APPS.c.id == bindparam("app_id"))
_PORTS_OF_APP = (
    select(_PORTS.c.service, _PORTS.c.port, _PORTS.c.protocol)
    .where(_PORTS.c.app_id == bindparam("app_id"))
    .order_by(_PORTS.c.id)
)
# On SQLite the hottest reads (get, a page of list) run their statements on the driver's own
# connection: SQLAlchemy's execution and rows cost several times the SELECTs themselves (a
# GetApp 0.24 ms against 0.03 ms, a page of 100 apps 1.5 ms against 0.9 ms; bench/agent.py).
_SQLITE = sqlite_dialect(paramstyle="named")


@dataclass(frozen=True, slots=True)
class _RawSelect:
    """A statement compiled once for SQLite (``:name`` parameters), with the conversion each of
    its parameters gets from its type (what SQLAlchemy would apply to it)."""

    sql: str
    convert: tuple[tuple[str, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, statement: Select[Any]) -> _RawSelect:
        compiled = statement.compile(dialect=_SQLITE)
        convert = []
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
            if processor is not None:
                convert.append((name, processor))
        return cls(str(compiled), tuple(convert))

    def run(self, raw: sqlite3.Connection, params: Mapping[str, Any]) -> list[Any]:
        values = dict(params)
        for name, processor in self.convert:
            if values.get(name) is not None:
                values[name] = processor(values[name])
        return raw.execute(self.sql, values).fetchall()


@functools.cache  # on first use, not at import: only a reader (Store.reading) needs them
def _raw_get() -> tuple[_RawSelect, _RawSelect]:
    return _RawSelect.of(_APP_BY_ID), _RawSelect.of(_PORTS_OF_APP)


_APP_COLUMNS = tuple(_APP_SELECT.selected_columns.keys())
_ID = _APP_COLUMNS.index("id")
_CONFIG = _APP_COLUMNS.index("config")
_PortValues = tuple[str, int, str]  # (service, port, protocol) as the ports table holds them


def _app(row: AppRow) -> App:
    """The App of an ORM row (create and update answer with the row they wrote)."""
    return App(
        id=row.id,
        hostname=row.hostname,
        status=row.status,
        host_id=row.host_id,
        catalog_id=row.catalog_id,
        catalog_version=row.catalog_version,
        owner_id=row.owner_id,
        node=row.node,
        vmid=row.vmid,
        address=row.address,
        url=row.url,
        resources=_resources(row.cores, row.memory_mb, row.swap_mb, row.disk_gb),
        ports=tuple(_port(p.service, p.port, p.protocol) for p in row.ports),
        config=row.config,
        adopted=row.adopted,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status_changed_at=row.status_changed_at,
    )


# Bounded: an App with a ~1.5 KB compose file and the values it was made of take ~6 KB, so 16,384
# are ~100 MB at most; bench/agent.py gives the server's RSS after listing 10,000 apps.
_APP_CACHE_SIZE = 16_384


class _AppCache:
    """The App of each app row the reads made, kept with everything it was made of: the row's
    values as the driver gave them (the config as its stored JSON text) and its ports' values.

    A row read again with exactly those values, most of a listing, gives the same validated model
    again: no timestamp, enum or JSON decoding and no validation (a page of 100 apps spent ~3 ms
    there), and the agent's servicer can keep each model's message by its identity
    (servicers/apps.py). Looked up by id but given only when every value is equal (comparing
    costs less than hashing 1.5 KB of config per row), never by id and updated_at alone: a write
    by another agent on the same database, a port change, or an UPDATE that leaves updated_at
    alone each make the values differ, and the new App replaces the old one. It holds what the
    Apps hold: no root password, no secret. Once kept (``AppsRepository.keep_reads``), a read's
    App may be the one an earlier read returned: Apps are frozen, and their config is not to be
    changed in place (the SDK copies it: ``{**app.config, ...}``). Reads run on several threads:
    changes are made under a lock; two threads building the same App at once both build an
    equal one."""

    def __init__(self) -> None:
        # (index, conversion) of the columns that have one for this database: most have none, and
        # a cold listing of 10,000 apps spent ~25 ms walking all 21 per row (bench/agent.py)
        self._convert: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None
        self.size = 0  # none kept until a server asks (AppsRepository.keep_reads)
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[tuple[Any, ...], tuple[_PortValues, ...], App]] = OrderedDict()

    def app(self, values: tuple[Any, ...], ports: tuple[_PortValues, ...]) -> App:
        """The App of a plain row of ``_APP_SELECT`` (as a tuple) and its ports' values."""
        if self.size == 0:
            return self._new(values, ports)
        app_id = values[_ID]
        kept = self._kept.get(app_id)
        if kept is not None and kept[0] == values and kept[1] == ports:
            with self._lock:
                if app_id in self._kept:
                    self._kept.move_to_end(app_id)
            return kept[2]
        app = self._new(values, ports)
        with self._lock:
            self._kept[app_id] = (values, ports, app)
            self._kept.move_to_end(app_id)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return app

    def config_text(self, app: App) -> str | None:
        """The JSON text ``app.config`` was decoded from, when ``app`` is the App kept for its row
        (then its config is that text's, Apps being frozen and their config never changed in
        place); else None."""
        kept = self._kept.get(app.id)
        if kept is None or kept[2] is not app:
            return None
        text: str | None = kept[0][_CONFIG]
        return text

    def resize(self, size: int) -> None:
        with self._lock:
            self.size = size
            while len(self._kept) > size:
                self._kept.popitem(last=False)

    def prepare(self, dialect: Dialect) -> None:
        """Each column's own conversion for this database, as a typed select would apply it."""
        if self._convert is None:
            processors = (c.type.dialect_impl(dialect).result_processor(dialect, None) for c in _READ)
            self._convert = tuple((i, convert) for i, convert in enumerate(processors) if convert is not None)

    def _new(self, values: tuple[Any, ...], ports: tuple[_PortValues, ...]) -> App:
        assert self._convert is not None, "prepare() first"
        typed = list(values)
        for i, convert in self._convert:
            if typed[i] is not None:
                typed[i] = convert(typed[i])
        fields = dict(zip(_APP_COLUMNS, typed, strict=True))
        config = fields.pop("config")
        resources = _resources(
            fields.pop("cores"), fields.pop("memory_mb"), fields.pop("swap_mb"), fields.pop("disk_gb")
        )
        return App(
            **fields,
            resources=resources,
            ports=tuple(_port(*p) for p in ports),
            # as the JSON column reads its text (json.loads); SQL NULL stays None (App refuses it)
            config=None if config is None else json.loads(config),
        )


_LIKE_ESCAPE = "/"
_FILTERS = ("status", "pattern", "host_id", "owner_id")  # the parameters _app_filter may take


def _filter_params(
    s: Session, *, status: AppStatus | str | None, search: str | None, host_id: str | None, owner_id: str | None
) -> dict[str, Any]:
    """The values of the filters given, checked, as the parameters of ``_app_filter``."""
    params: dict[str, Any] = {}
    if status is not None:
        try:
            params["status"] = AppStatus(status)
        except ValueError:
            raise ValidationError(
                f"status {status!r} is not one of {[v.value for v in AppStatus]}", field="status"
            ) from None
    if search:
        # hostname or catalog id containing the term, case-insensitively; the term's own LIKE
        # wildcards match only themselves (escaped as SQLAlchemy's autoescape would a literal)
        term = search.strip().lower()
        for special in (_LIKE_ESCAPE, "%", "_"):  # the escape character first
            term = term.replace(special, _LIKE_ESCAPE + special)
        params["pattern"] = f"%{term}%"
    if host_id is not None:
        params["host_id"] = find_host(s, host_id).id
    if owner_id is not None:
        params["owner_id"] = owner_id
    return params


def _shape(params: Mapping[str, Any]) -> tuple[bool, bool, bool, bool]:
    status, pattern, host, owner = (name in params for name in _FILTERS)
    return status, pattern, host, owner


@functools.cache  # 16 shapes of filter
def _app_filter(status: bool, search: bool, host: bool, owner: bool) -> tuple[ColumnElement[bool], ...]:
    """The WHERE of the apps query with these filters, their values as parameters."""
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(AppRow.status == bindparam("status"))
    if search:
        pattern: BindParameter[Any] = bindparam("pattern")
        where.append(
            or_(
                func.lower(AppRow.hostname).like(pattern, escape=_LIKE_ESCAPE),
                func.lower(AppRow.catalog_id).like(pattern, escape=_LIKE_ESCAPE),
            )
        )
    if host:
        where.append(AppRow.host_id == bindparam("host_id"))
    if owner:
        where.append(AppRow.owner_id == bindparam("owner_id"))
    return tuple(where)


@functools.cache  # 32 shapes: filters and a cursor or not
def _page_statements(
    status: bool, search: bool, host: bool, owner: bool, after: bool
) -> tuple[Select[Any], Select[Any]]:
    """A page of ``list`` (oldest first) and the ports of its apps, built once per shape with
    every value a parameter (the filters', ``after_at``/``after_id``, ``offset``, ``limit``).
    Building them per page, with the ports' IN list of 100 ids rendered anew at each run, cost
    about as much as running them."""
    where = list(_app_filter(status, search, host, owner))
    if after:
        at: BindParameter[Any] = bindparam("after_at")
        row_id: BindParameter[Any] = bindparam("after_id")
        where.append(after_condition(AppRow.created_at, AppRow.id, at, row_id, newest_first=False, id_descending=False))
    page = (
        _APP_SELECT.where(*where)
        .order_by(AppRow.created_at, AppRow.id)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    # in the order AppRow.ports gives them (by port row id); the page again as a subquery, so
    # the statement does not change with the ids
    ports = (
        select(_PORTS.c.app_id, _PORTS.c.service, _PORTS.c.port, _PORTS.c.protocol)
        .where(_PORTS.c.app_id.in_(page.with_only_columns(AppRow.id)))
        .order_by(_PORTS.c.id)
    )
    return page, ports


@functools.cache  # as _page_statements
def _raw_page_statements(
    status: bool, search: bool, host: bool, owner: bool, after: bool
) -> tuple[_RawSelect, _RawSelect]:
    page, ports = _page_statements(status, search, host, owner, after)
    return _RawSelect.of(page), _RawSelect.of(ports)


def _set_resources(row: AppRow, resources: Resources) -> None:
    row.cores, row.memory_mb = resources.cores, resources.memory_mb
    row.swap_mb, row.disk_gb = resources.swap_mb, resources.disk_gb


def _check_ports(ports: Sequence[Port]) -> None:
    seen = set()
    for p in ports:
        if (p.port, p.protocol) in seen:
            raise ValidationError(f"port {p.port}/{p.protocol} is listed twice", field="ports")
        seen.add((p.port, p.protocol))


def _set_ports(row: AppRow, ports: Sequence[Port], session: Session | None = None) -> None:
    _check_ports(ports)
    if session is not None and row.ports:
        # the unit of work inserts before it deletes: remove the old rows first, or setting the
        # same ports again would collide with themselves on (app_id, port, protocol)
        row.ports = []
        session.flush()
    row.ports = [PortRow(service=p.service, port=p.port, protocol=p.protocol) for p in ports]


_HOST_OF_APP = select(_APPS.c.host_id).where(_APPS.c.id == bindparam("app_id"))
_SECRETS = AppSecretRow.__table__
_SECRETS_OF_APP = (
    select(_SECRETS.c.name, _SECRETS.c.value).where(_SECRETS.c.app_id == bindparam("app_id")).order_by(_SECRETS.c.name)
)
_DELETE_SECRETS = delete(AppSecretRow).where(
    _SECRETS.c.app_id == bindparam("app_id"), _SECRETS.c.name.in_(bindparam("names", expanding=True))
)
_INSERT_SECRET = insert(AppSecretRow)
_DELETE_PORTS = delete(PortRow).where(PortRow.app_id == bindparam("app_id"))
_INSERT_PORT = insert(PortRow)


@functools.lru_cache(maxsize=64)
def _patch_statement(columns: tuple[str, ...]) -> Any:
    """The UPDATE of these columns of one app (``patch``), built once per set of columns: the
    engine's steps change the same few columns every time, and building a statement costs more
    than running it."""
    values: dict[str, Any] = {name: bindparam(name, type_=_APPS.c[name].type) for name in columns}
    if "status" in columns:
        # stamped only when the status changes, as update does
        values["status_changed_at"] = case(
            # a parameter of its own: PostgreSQL deduces one type per parameter, and SET and
            # the comparison would deduce two
            (_APPS.c.status != bindparam("_new_status", type_=_APPS.c.status.type), values["updated_at"]),
            else_=_APPS.c.status_changed_at,
        )
    return update(AppRow).where(AppRow.id == bindparam("_app_id")).values(values)


def _no_app(app_id: str) -> NotFoundError:
    return NotFoundError(f"no app {app_id!r}", hint="List the apps with px.apps.list()")


def _find(s: Session, app_id: str) -> AppRow:
    row = s.execute(select(AppRow).options(selectinload(AppRow.ports)).where(AppRow.id == app_id)).scalar_one_or_none()
    if row is None:
        raise _no_app(app_id)
    return row


def _host_of(c: Connection, app_id: str) -> str:
    """The app's host id, one plain read (NotFoundError when there is no such app)."""
    host_id = c.execute(_HOST_OF_APP, {"app_id": app_id}).scalar()
    if host_id is None:
        raise _no_app(app_id)
    return str(host_id)


def _conflict(s: Session, host_id: str, hostname: str | None, vmid: int | None, *, not_id: str | None) -> None:
    clauses = []
    if hostname is not None:
        clauses.append(AppRow.hostname == hostname)
    if vmid is not None:
        clauses.append(AppRow.vmid == vmid)
    if not clauses:
        return
    query = select(AppRow.hostname, AppRow.vmid).where(AppRow.host_id == host_id, or_(*clauses))
    if not_id is not None:
        query = query.where(AppRow.id != not_id)
    hit = s.execute(query).first()
    if hit is None:
        return
    if hostname is not None and hit.hostname == hostname:
        raise AlreadyExistsError(f"an app named {hostname!r} already exists on this host")
    raise AlreadyExistsError(f"VMID {vmid} already belongs to app {hit.hostname!r} on this host")


class AppsRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._apps = _AppCache()

    def keep_reads(self, count: int = _APP_CACHE_SIZE) -> None:
        """Keep the App of up to ``count`` rows between reads (0: none, the default), so a row read
        again unchanged gives the same App object without decoding or validating it again.

        For a server whose Apps never reach code that might change one in place (the agent turns
        them into messages): an App's ``config`` is a plain dict, and a change made to a kept App
        would show in every later read of its row. A script or a notebook gets a new App per read."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValidationError(f"count must be an integer >= 0, not {count!r}", field="count")
        self._apps.resize(count)

    def stored_config(self, app: App) -> str | None:
        """The JSON text the database holds for ``app.config``, when ``app`` is the App a read
        made of its row and keeps (``keep_reads``); else None. A server answering with the config
        as JSON text can hand this on instead of encoding the dict again (a cold page of 100
        apps: 0.3-0.4 ms less server CPU, ``bench/agent.py``). The text is the database's own:
        the same object, not always with sorted keys or without spaces."""
        return self._apps.config_text(app)

    def create(self, request: AppCreate | None = None, /, **fields: Any) -> App:
        req = validate_request(AppCreate, request, fields, what="app")
        try:
            with self._ctx.session(immediate=True) as s:
                host = find_host(s, req.host_id)
                _conflict(s, host.id, req.hostname, req.vmid, not_id=None)
                row = AppRow(
                    hostname=req.hostname,
                    host_id=host.id,
                    status=req.status,
                    catalog_id=req.catalog_id,
                    catalog_version=req.catalog_version,
                    owner_id=req.owner_id,
                    node=req.node,
                    vmid=req.vmid,
                    address=req.address,
                    url=req.url,
                    config=req.config,
                    adopted=req.adopted,
                    root_password=self._encrypt(req.root_password),
                )
                if req.id is not None:
                    row.id = req.id
                _set_resources(row, req.resources)
                _set_ports(row, req.ports)
                s.add(row)
                s.flush()
                return _app(row)
        except IntegrityError as exc:
            raise AlreadyExistsError(
                f"app {req.hostname!r} (VMID {req.vmid}) collides with an existing app: {exc.orig}"
            ) from None

    def get(self, app_id: str) -> App:
        raw = self._ctx.raw_reader()
        if raw is not None:
            return self._get_raw(raw, app_id)
        # plain rows, as in list: no ORM identity map or relationship loader for a read (about
        # half of a GetApp's server time went there, bench/agent.py)
        with self._ctx.session() as s:
            row = s.execute(_APP_BY_ID, {"app_id": app_id}).first()
            if row is None:
                raise _no_app(app_id)
            ports = s.execute(_PORTS_OF_APP, {"app_id": row.id})
            self._apps.prepare(s.get_bind().dialect)
            return self._apps.app(tuple(row), tuple((p.service, p.port, p.protocol) for p in ports))

    def _get_raw(self, raw: sqlite3.Connection, app_id: str) -> App:
        """``get`` on a reader's own SQLite connection (Store.reading), without SQLAlchemy: the
        same statements compiled once, the same rows (the driver's values), the same App.
        Through a session the read took 0.24 ms, here 0.03 ms, and the agent's event loop runs
        it for every GetApp."""
        app_select, ports_select = _raw_get()
        params = {"app_id": app_id}
        raw.execute("BEGIN")  # one snapshot for the app and its ports
        try:
            rows = app_select.run(raw, params)
            ports = ports_select.run(raw, params) if rows else []
        finally:
            raw.execute("COMMIT")
        if not rows:
            raise _no_app(app_id)
        self._apps.prepare(_SQLITE)
        return self._apps.app(rows[0], tuple(ports))

    def list(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host_id: str | None = None,
        owner_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
        after: Cursor | None = None,
    ) -> list[App]:
        """One page of apps, oldest first (stable across pages). ``search`` matches hostname or
        catalog id, case-insensitively. No secrets in the results. ``after`` (the
        ``(created_at, id)`` of the previous page's last app) seeks by the index instead of
        skipping ``offset`` rows: give one or the other."""
        if offset < 0:
            raise ValidationError(f"offset must be 0 or more, got {offset}", field="offset")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}", field="limit")
        if after is not None and offset:
            raise ValidationError("give offset or after, not both", field="after")
        with self._ctx.session() as s:
            params = _filter_params(s, status=status, search=search, host_id=host_id, owner_id=owner_id)
            if after is not None:
                params["after_at"], params["after_id"] = checked_cursor(after)
            params["offset"], params["limit"] = offset, limit
            shape = (*_shape(params), after is not None)
            # plain rows on the connection, not ORM objects through the session: a page of 100
            # costs about a third less (bench/agent.py); on SQLite the driver's own rows
            conn = s.connection()
            dialect = conn.dialect
            rows: Sequence[Sequence[Any]]
            port_rows: Sequence[Sequence[Any]]
            if dialect.name == "sqlite":
                raw = conn.connection.driver_connection  # in the session's transaction
                assert isinstance(raw, sqlite3.Connection)
                raw_page, raw_ports = _raw_page_statements(*shape)
                rows, port_rows = raw_page.run(raw, params), raw_ports.run(raw, params)
            else:
                page, page_ports = _page_statements(*shape)
                rows, port_rows = conn.execute(page, params).all(), conn.execute(page_ports, params).all()
            ports: dict[str, list[_PortValues]] = {}
            for app_id, service, port, protocol in port_rows:
                ports.setdefault(app_id, []).append((service, port, protocol))
            self._apps.prepare(dialect)
            app = self._apps.app
            return [app(tuple(r), tuple(ports.get(r[_ID], ()))) for r in rows]

    def count(
        self,
        *,
        status: AppStatus | str | None = None,
        search: str | None = None,
        host_id: str | None = None,
        owner_id: str | None = None,
    ) -> int:
        with self._ctx.session() as s:
            params = _filter_params(s, status=status, search=search, host_id=host_id, owner_id=owner_id)
            query = select(func.count()).select_from(_APPS).where(*_app_filter(*_shape(params)))
            return s.connection().execute(query, params).scalar_one()

    def count_for_host(self, host_id: str) -> int:
        return self.count(host_id=host_id)

    def update(self, app_id: str, request: AppPatch | None = None, /, **fields: Any) -> App:
        req = validate_request(AppPatch, request, fields, what="app update")
        given = req.model_fields_set
        try:
            with self._ctx.session(immediate=True) as s:
                row = _find(s, app_id)
                _conflict(
                    s,
                    row.host_id,
                    req.hostname if "hostname" in given else None,
                    req.vmid if "vmid" in given else None,
                    not_id=row.id,
                )
                if req.status is not None and req.status != row.status:
                    row.status = req.status
                    row.status_changed_at = utcnow()
                for name in _PLAIN_FIELDS:
                    if name in given:
                        setattr(row, name, getattr(req, name))
                if req.resources is not None:
                    _set_resources(row, req.resources)
                if req.ports is not None:
                    _set_ports(row, req.ports, s)
                if "root_password" in given:
                    row.root_password = self._encrypt(req.root_password)
                s.flush()
                return _app(row)
        except IntegrityError as exc:
            raise AlreadyExistsError(f"app {app_id!r} update collides with another app: {exc.orig}") from None

    def patch(self, app_id: str, request: AppPatch | None = None, /, **fields: Any) -> None:
        """``update`` for a caller that does not use the result: the same checks and changes, in
        plain statements (one UPDATE of the given columns; the ports replaced when given), and no
        App read back. The operations change their app's record this way at every step."""
        req = validate_request(AppPatch, request, fields, what="app update")
        given = req.model_fields_set
        values: dict[str, Any] = {name: getattr(req, name) for name in _PLAIN_FIELDS if name in given}
        if req.resources is not None:
            r = req.resources
            values.update(cores=r.cores, memory_mb=r.memory_mb, swap_mb=r.swap_mb, disk_gb=r.disk_gb)
        if "root_password" in given:
            values["root_password"] = self._encrypt(req.root_password)
        if req.status is not None:
            values["status"] = req.status
        if req.ports is not None:
            _check_ports(req.ports)
        values["updated_at"] = utcnow()
        try:
            with self._ctx.session(immediate=True) as s:
                c = s.connection()
                if "hostname" in given or "vmid" in given:
                    _conflict(
                        s,
                        _host_of(c, app_id),
                        req.hostname if "hostname" in given else None,
                        req.vmid if "vmid" in given else None,
                        not_id=app_id,
                    )
                params = {**values, "_app_id": app_id, "_new_status": req.status}
                done = c.execute(_patch_statement(tuple(values)), params)
                if not getattr(done, "rowcount", 0):
                    raise _no_app(app_id)
                if req.ports is not None:
                    c.execute(_DELETE_PORTS, {"app_id": app_id})
                    if req.ports:
                        c.execute(
                            _INSERT_PORT,
                            [
                                {"app_id": app_id, "service": p.service, "port": p.port, "protocol": p.protocol}
                                for p in req.ports
                            ],
                        )
        except IntegrityError as exc:
            raise AlreadyExistsError(f"app {app_id!r} update collides with another app: {exc.orig}") from None

    def delete(self, app_id: str) -> None:
        """Forget the record (its ports and secrets go with it). Proxmox is not touched here."""
        with self._ctx.session(immediate=True) as s:
            row = _find(s, app_id)
            s.execute(delete(PortRow).where(PortRow.app_id == row.id))
            s.execute(delete(AppSecretRow).where(AppSecretRow.app_id == row.id))
            s.execute(delete(AppRow).where(AppRow.id == row.id))

    # --- secrets ------------------------------------------------------------------------------

    def _encrypt(self, value: SecretStr | None) -> str | None:
        return None if value is None else self._ctx.box.encrypt(value.get_secret_value())

    def root_password(self, app_id: str) -> SecretStr | None:
        with self._ctx.session() as s:
            token = s.execute(select(AppRow.root_password).where(AppRow.id == app_id)).one_or_none()
            if token is None:
                raise NotFoundError(f"no app {app_id!r}")
            if token[0] is None:
                return None
            return SecretStr(self._ctx.box.decrypt(token[0], what=f"the root password of app {app_id}"))

    def set_secrets(self, app_id: str, values: Mapping[str, str | SecretStr]) -> None:
        """Store (or replace) generated secrets of an app, encrypted."""
        for name in values:
            if not _SECRET_NAME.match(name):
                raise ValidationError(f"secret name {name!r} is not a valid variable name", field="values")
        rows = [
            {
                "app_id": app_id,
                "name": name,
                "value": self._ctx.box.encrypt(value.get_secret_value() if isinstance(value, SecretStr) else value),
            }
            for name, value in values.items()
        ]
        # plain statements: this runs at every deploy and clone (the ORM's merge read each row first)
        with self._ctx.session(immediate=True) as s:
            c = s.connection()
            _host_of(c, app_id)
            if rows:
                c.execute(_DELETE_SECRETS, {"app_id": app_id, "names": [r["name"] for r in rows]})
                c.execute(_INSERT_SECRET, rows)

    def secrets(self, app_id: str) -> dict[str, SecretStr]:
        """The app's generated secrets, decrypted (for its owner or an admin only)."""
        with self._ctx.session() as s:
            c = s.connection()
            _host_of(c, app_id)
            rows = c.execute(_SECRETS_OF_APP, {"app_id": app_id}).all()
        return {
            r.name: SecretStr(self._ctx.box.decrypt(r.value, what=f"secret {r.name} of app {app_id}")) for r in rows
        }

    def unborn(self, host_id: str, *, changed_since: datetime | None = None) -> Sequence[UnbornApp]:
        """Every app of the host being deployed or cloned that has a node (placement's in-flight
        memory): four columns, no App models, no page limit. ``changed_since``: also the placed
        apps whose status changed since then (a deploy that ended after the caller read Proxmox)."""
        flying: ColumnElement[bool] = AppRow.status.in_((AppStatus.DEPLOYING, AppStatus.CLONING))
        if changed_since is not None:
            flying = or_(flying, AppRow.status_changed_at >= changed_since)
        query = (
            select(AppRow.id, AppRow.node, AppRow.vmid, AppRow.memory_mb)
            .where(AppRow.host_id == host_id, AppRow.node.is_not(None), flying)
            .order_by(AppRow.id)
        )
        with self._ctx.session() as s:
            return [UnbornApp(id=r.id, node=r.node, vmid=r.vmid, memory_mb=r.memory_mb) for r in s.execute(query)]
