"""The database tables (SQLAlchemy 2). Repositories turn rows into the pydantic models of
``proximity_sdk.models``; nothing outside ``proximity_sdk.store`` touches these classes.

Columns holding ciphertext carry ``info={"secret": True}``: key rotation re-encrypts exactly those.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from proximity_sdk.models.app import AppStatus
from proximity_sdk.models.backup import BackupStatus
from proximity_sdk.models.operation import OperationStatus
from proximity_sdk.models.user import Role
from proximity_sdk.store.base import Base, BigIntPK, UTCDateTime, new_id, utcnow

__all__ = [
    "AddressReservationRow",
    "ApiTokenRow",
    "AppRow",
    "AppSecretRow",
    "BackupRow",
    "BackupScheduleRow",
    "BackupTargetRow",
    "HostRow",
    "NodeRow",
    "OperationEventRow",
    "OperationRow",
    "PortRow",
    "SettingsRow",
    "UserRow",
    "VmidReservationRow",
    "secret_columns",
]

SECRET = {"secret": True}
ID = String(36)


def _enum(cls: type[StrEnum], length: int) -> Enum:
    # Stored as plain VARCHAR of the values: adding a state later needs no constraint migration.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SettingsRow(Base):
    """The single settings row (id 1), created by the first migration.

    ``data`` holds only the settings changed from their defaults; ``key_check`` is an encrypted
    canary that tells at open whether the secret key is the one the data was written with.
    """

    __tablename__ = "settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key_check: Mapped[str | None] = mapped_column(Text, info=SECRET)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class UserRow(_Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, 16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiTokenRow(Base):
    """A bearer token, stored as the SHA-256 of the token (tokens are random, so no slow hash is needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # written at most once a minute per token (see UsersRepository.by_token_hash)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # revoked tokens stay as a record of what existed; they never authenticate again
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HostRow(_Timestamps, Base):
    __tablename__ = "hosts"
    __table_args__ = (
        # at most one default host, enforced by the database itself
        Index(
            "uq_hosts_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default = 1"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    auth: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[str | None] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(255))
    # the token secret or the password, whichever ``auth`` says; Fernet ciphertext
    secret: Mapped[str] = mapped_column(Text, info=SECRET)
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    ca_pem: Mapped[str | None] = mapped_column(Text)
    ssh: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # an SSH private key given as contents (not a path), Fernet ciphertext; ``ssh`` then has no key_file
    ssh_key: Mapped[str | None] = mapped_column(Text, info=SECRET)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # the container registries of the host's apps (RegistrySettings, credentials included) as
    # Fernet-encrypted JSON; null: Docker's defaults
    registries: Mapped[str | None] = mapped_column(Text, info=SECRET)

    nodes: Mapped[list[NodeRow]] = relationship(lazy="raise", passive_deletes=True)


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("host_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    cpus: Mapped[int | None] = mapped_column(Integer)
    maxmem: Mapped[int | None] = mapped_column(BigInteger)
    mem: Mapped[int | None] = mapped_column(BigInteger)
    maxdisk: Mapped[int | None] = mapped_column(BigInteger)
    disk: Mapped[int | None] = mapped_column(BigInteger)
    pve_version: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppRow(_Timestamps, Base):
    __tablename__ = "apps"
    __table_args__ = (
        UniqueConstraint("host_id", "hostname"),
        UniqueConstraint("host_id", "vmid"),
        Index("ix_apps_status", "status"),
        Index("ix_apps_host_id_node", "host_id", "node"),
        # the order every listing pages in: without it each page sorts the whole table
        Index("ix_apps_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    catalog_id: Mapped[str | None] = mapped_column(String(100))
    catalog_version: Mapped[str | None] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(63))
    # RESTRICT: a host cannot disappear under its apps
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    node: Mapped[str | None] = mapped_column(String(63))
    vmid: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[AppStatus] = mapped_column(_enum(AppStatus, 16))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(String(512))
    cores: Mapped[int | None] = mapped_column(Integer)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    swap_mb: Mapped[int | None] = mapped_column(Integer)
    disk_gb: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    root_password: Mapped[str | None] = mapped_column(Text, info=SECRET)

    ports: Mapped[list[PortRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True, order_by="PortRow.id"
    )
    secrets: Mapped[list[AppSecretRow]] = relationship(lazy="raise", cascade="all, delete-orphan", passive_deletes=True)


class PortRow(Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("app_id", "port", "protocol"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(63))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(8), default="tcp")


class AppSecretRow(Base):
    """A value generated for one deployment (e.g. MYSQL_PASSWORD), shared by the app's services."""

    __tablename__ = "app_secrets"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text, info=SECRET)


_ACTIVE_OP = "status IN ('pending', 'running')"


class OperationRow(_Timestamps, Base):
    __tablename__ = "operations"
    __table_args__ = (
        # one unfinished operation per app and per VMID: a second one fails on insert, race-free
        Index(
            "uq_operations_active_app",
            "app_id",
            unique=True,
            sqlite_where=text(_ACTIVE_OP),
            postgresql_where=text(_ACTIVE_OP),
        ),
        Index(
            "uq_operations_active_vmid",
            "host_id",
            "vmid",
            unique=True,
            sqlite_where=text(_ACTIVE_OP),
            postgresql_where=text(_ACTIVE_OP),
        ),
        Index("ix_operations_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_operations_app_id_created_at", "app_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    # no foreign key: an operation keeps naming the app it acted on after a delete removed it
    # (listeners and the history need to know which app a delete was about)
    app_id: Mapped[str | None] = mapped_column(ID)
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    vmid: Mapped[int | None] = mapped_column(Integer)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[OperationStatus] = mapped_column(_enum(OperationStatus, 16))
    steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    current_step: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    runner_id: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # set by a cancel request; the runner checks it between steps, then rolls back
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # what the operation changed outside the database, in order, so a takeover can roll it back
    side_effects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OperationEventRow(Base):
    __tablename__ = "operation_events"
    __table_args__ = (UniqueConstraint("operation_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    step: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)
    progress: Mapped[float | None] = mapped_column(Float)


class BackupRow(_Timestamps, Base):
    __tablename__ = "backups"
    __table_args__ = (
        Index("ix_backups_app_id_status", "app_id", "status"),
        Index("ix_backups_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    # SET NULL: the artifact outlives the app's record until it is deleted on purpose
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"))
    hostname: Mapped[str] = mapped_column(String(63))
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    node: Mapped[str | None] = mapped_column(String(63))
    vmid: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(String(63))
    storage: Mapped[str | None] = mapped_column(String(64))
    volid: Mapped[str | None] = mapped_column(String(512))
    mode: Mapped[str] = mapped_column(String(16), default="snapshot")
    compression: Mapped[str] = mapped_column(String(8), default="zstd")
    status: Mapped[BackupStatus] = mapped_column(_enum(BackupStatus, 16))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    schedule_id: Mapped[str | None] = mapped_column(ForeignKey("backup_schedules.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # migration 0002: how long the vzdump took, and where the target keeps the archive (its own format)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    location: Mapped[str | None] = mapped_column(String(1024))
    # migration 0007: the archive's SHA-256 as written, checked before a restore (a target's own
    # checksum sits beside the archive, where whoever replaces one can replace the other)
    digest: Mapped[str | None] = mapped_column(String(80))


class BackupScheduleRow(_Timestamps, Base):
    __tablename__ = "backup_schedules"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    cron: Mapped[str] = mapped_column(String(128))
    keep_last: Mapped[int | None] = mapped_column(Integer)
    keep_daily: Mapped[int | None] = mapped_column(Integer)
    keep_weekly: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(String(63))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class AppUpdatePolicyRow(_Timestamps, Base):
    """Automatic updates of one app: in a weekly maintenance window (UTC)."""

    __tablename__ = "app_update_policies"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    days: Mapped[str] = mapped_column(String(32))  # "mon,tue,..."
    start: Mapped[str] = mapped_column(String(5))  # "HH:MM"
    minutes: Mapped[int] = mapped_column(Integer)
    # the opening of the last window that was claimed: each window is acted on once
    last_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BackupTargetRow(_Timestamps, Base):
    __tablename__ = "backup_targets"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(63))
    # the target's options as encrypted JSON: they often hold passwords or keys
    options: Mapped[str] = mapped_column(Text, info=SECRET)


class HostKeyRow(Base):
    """An SSH host key of a host's node, pinned on first use or accepted explicitly (migration 0007):
    kept here, every agent replica and every restart checks nodes against the same keys."""

    __tablename__ = "host_keys"

    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    # the name paramiko looks keys up by: the address, or "[address]:port" off port 22
    hostname: Mapped[str] = mapped_column(String(300), primary_key=True)
    key_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(Text)  # base64, as in known_hosts
    fingerprint: Mapped[str] = mapped_column(String(64))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VmidReservationRow(Base):
    """A VMID taken on a host by an operation, before Proxmox knows it: the key makes it race-free."""

    __tablename__ = "vmid_reservations"

    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    vmid: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[str | None] = mapped_column(ForeignKey("operations.id", ondelete="SET NULL"))
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"))
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AddressReservationRow(Base):
    """A static pool address held by an app (or an operation still deploying it)."""

    __tablename__ = "address_reservations"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"), index=True)
    operation_id: Mapped[str | None] = mapped_column(ForeignKey("operations.id", ondelete="SET NULL"))
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def secret_columns() -> dict[str, list[str]]:
    """Table name -> names of its ciphertext columns (what key rotation must re-encrypt)."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns if c.info.get("secret")]
        if names:
            found[table.name] = names
    return found
