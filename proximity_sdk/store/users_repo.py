"""Users and their API tokens (stored as SHA-256 hashes; the token is shown once, at issue).

Rules kept here, for every caller (SDK, agent, CLI):

- the last enabled admin can be neither demoted nor disabled (checked and written in one
  transaction that locks every enabled admin, so two concurrent demotions cannot both pass);
- revoking a token keeps its record with ``revoked_at`` set; it never authenticates again.
  ``tokens()`` lists the live ones (expired included, they show ``expires_at``) unless
  ``include_revoked=True``; ``token()`` finds any, revoked or not;
- authenticating reads without a write lock; ``last_used_at`` is written at most once a minute
  per token, so a busy client costs one write a minute, not one per call. Nothing is cached:
  a revoke, an expiry or a disabled user takes effect on the very next call.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.user import ApiToken, Role, User
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import ApiTokenRow, UserRow

__all__ = ["LAST_USED_RESOLUTION", "TOKEN_PREFIX", "UsersRepository", "hash_token"]

TOKEN_PREFIX = "pxt_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# how stale ``last_used_at`` may get: the price of not writing on every authenticated call
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The stored form of a bearer token. Tokens carry 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: UserRow) -> User:
    return User(id=row.id, name=row.name, role=row.role, disabled=row.disabled, created_at=row.created_at)


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise ValidationError(
            f"user name {name!r} must be 1-64 letters, digits or . _ @ - (first a letter or digit)",
            field="name",
        )
    return name


def _checked_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(f"role {role!r} must be one of {[r.value for r in Role]}", field="role") from None


def _find(s: Session, id_or_name: str) -> UserRow:
    row = (
        s.get(UserRow, id_or_name) or s.execute(select(UserRow).where(UserRow.name == id_or_name)).scalar_one_or_none()
    )
    if row is None:
        raise NotFoundError(f"no user {id_or_name!r}")
    return row


class UsersRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def create(self, name: str, *, role: Role | str = Role.MEMBER) -> User:
        name, role = _checked_name(name), _checked_role(role)
        try:
            with self._ctx.session(immediate=True) as s:
                if s.execute(select(UserRow.id).where(UserRow.name == name)).first():
                    raise AlreadyExistsError(f"a user named {name!r} already exists")
                row = UserRow(name=name, role=role)
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise AlreadyExistsError(f"a user named {name!r} already exists") from None

    def get(self, id_or_name: str) -> User:
        with self._ctx.session() as s:
            return _user(_find(s, id_or_name))

    def list(self) -> list[User]:
        with self._ctx.session() as s:
            return [_user(r) for r in s.execute(select(UserRow).order_by(UserRow.name)).scalars()]

    def update(
        self,
        id_or_name: str,
        *,
        name: str | None = None,
        role: Role | str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change the given fields (None: keep). ``ConflictError`` when the change would leave no
        enabled admin; ``AlreadyExistsError`` when the new name is taken."""
        if name is not None:
            name = _checked_name(name)
        new_role = _checked_role(role) if role is not None else None
        if disabled is not None and not isinstance(disabled, bool):
            raise ValidationError(f"disabled must be true or false, not {disabled!r}", field="disabled")
        try:
            with self._ctx.session(immediate=True) as s:
                target_id = _find(s, id_or_name).id
                # Lock the user and every enabled admin, in id order (the same order for every
                # caller, so two updates cannot deadlock). On PostgreSQL a concurrent demotion
                # waits here and is then re-checked against the committed rows; on SQLite the
                # immediate transaction already serializes writers.
                locked = (
                    s.execute(
                        select(UserRow)
                        .where(
                            or_(
                                UserRow.id == target_id,
                                and_(UserRow.role == Role.ADMIN, UserRow.disabled.is_(False)),
                            )
                        )
                        .order_by(UserRow.id)
                        .with_for_update()
                        .execution_options(populate_existing=True)
                    )
                    .scalars()
                    .all()
                )
                row = next((r for r in locked if r.id == target_id), None)
                if row is None:  # deleted between the lookup and the lock
                    raise NotFoundError(f"no user {id_or_name!r}")
                is_admin = row.role == Role.ADMIN and not row.disabled
                stays_admin = (new_role or row.role) == Role.ADMIN and not (
                    row.disabled if disabled is None else disabled
                )
                others = [r for r in locked if r.id != row.id and r.role == Role.ADMIN and not r.disabled]
                if is_admin and not stays_admin and not others:
                    raise ConflictError(
                        f"{row.name!r} is the last enabled admin; it can be neither demoted nor disabled",
                        hint="Make another user admin (or enable one) first",
                    )
                if name is not None and name != row.name:
                    if s.execute(select(UserRow.id).where(UserRow.name == name)).first():
                        raise AlreadyExistsError(f"a user named {name!r} already exists")
                    row.name = name
                if new_role is not None:
                    row.role = new_role
                if disabled is not None:
                    row.disabled = disabled
                s.flush()
                return _user(row)
        except IntegrityError:  # a concurrent rename to the same name won the race
            raise AlreadyExistsError(f"a user named {name!r} already exists") from None

    def set_disabled(self, id_or_name: str, *, disabled: bool) -> User:
        """``update(id_or_name, disabled=...)``: the last enabled admin cannot be disabled."""
        return self.update(id_or_name, disabled=disabled)

    def issue_token(
        self, id_or_name: str, *, name: str = "default", expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """A new bearer token for the user: its record, and the token itself (shown only now)."""
        if not 1 <= len(name) <= 64:
            raise ValidationError("token name must be 1-64 characters", field="name")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationError("expires_at must be timezone-aware", field="expires_at")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._ctx.session(immediate=True) as s:
            user = _find(s, id_or_name)
            row = ApiTokenRow(user_id=user.id, name=name, token_hash=hash_token(token), expires_at=expires_at)
            s.add(row)
            s.flush()
            return _token(row), token

    def issue_token_for(
        self, user_name: str, *, role: Role, name: str = "default", expires_at: datetime | None = None
    ) -> tuple[User, ApiToken, str, bool]:
        """A token for the user ``user_name`` of this ``role``, creating the user when missing:
        ``(user, token record, token, created)``. Refuses a user of another role (never promotes
        one silently) and a disabled user. How the agent's first admin token is bootstrapped."""
        created = False
        try:
            user = self.get(user_name)
        except NotFoundError:
            user = self.create(user_name, role=role)
            created = True
        if user.role != role:

            def a(r: Role) -> str:
                return f"an {r.value}" if r.value[0] in "aeiou" else f"a {r.value}"

            raise ValidationError(
                f"user {user_name!r} is {a(user.role)}, not {a(role)}",
                field="user",
                hint="Choose another user name, or change its role with an admin token",
            )
        if user.disabled:
            raise ValidationError(
                f"user {user_name!r} is disabled", field="user", hint="Enable it again, or choose another name"
            )
        record, token = self.issue_token(user.id, name=name, expires_at=expires_at)
        return user, record, token, created

    def token(self, token_id: str) -> ApiToken:
        """A token's record by id, revoked or not."""
        with self._ctx.session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"no API token {token_id!r}")
            return _token(row)

    def tokens(self, id_or_name: str, *, include_revoked: bool = False) -> builtins.list[ApiToken]:
        """The user's tokens, oldest first: the unrevoked ones, or all with ``include_revoked``."""
        with self._ctx.session() as s:
            user = _find(s, id_or_name)
            query = select(ApiTokenRow).where(ApiTokenRow.user_id == user.id)
            if not include_revoked:
                query = query.where(ApiTokenRow.revoked_at.is_(None))
            rows = s.execute(query.order_by(ApiTokenRow.created_at, ApiTokenRow.id)).scalars()
            return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token at once; returns its record (``revoked_at`` set). ``NotFoundError``
        when there is no such token or it is already revoked."""
        with self._ctx.session(immediate=True) as s:
            row = s.get(ApiTokenRow, token_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no API token {token_id!r}")
            if row.revoked_at is not None:
                raise NotFoundError(
                    f"API token {token_id!r} was already revoked at {row.revoked_at.isoformat()}",
                    hint="List the user's live tokens to find the one to revoke",
                )
            row.revoked_at = utcnow()
            s.flush()
            return _token(row)

    def by_token_hash(self, token_hash: str) -> User | None:
        """The enabled user owning a live (unrevoked, unexpired) token with this hash, else None."""
        now = utcnow()
        with self._ctx.session() as s:  # a read: no write lock for the common case
            found = s.execute(
                select(
                    ApiTokenRow.id, ApiTokenRow.expires_at, ApiTokenRow.revoked_at, ApiTokenRow.last_used_at, UserRow
                )
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_hash == token_hash)
            ).first()
        if found is None:
            return None
        token_id, expires_at, revoked_at, last_used_at, user = found
        if user.disabled or revoked_at is not None or (expires_at is not None and expires_at <= now):
            return None
        if last_used_at is None or last_used_at <= now - LAST_USED_RESOLUTION:
            self._touch(token_id, now)
        return _user(user)

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None when unknown, revoked, expired or disabled."""
        return self.by_token_hash(hash_token(token))

    def _touch(self, token_id: str, now: datetime) -> None:
        # Conditional, so that agents authenticating the same token at once write it once a minute.
        stale = now - LAST_USED_RESOLUTION
        with self._ctx.session(immediate=True) as s:
            s.execute(
                update(ApiTokenRow)
                .where(
                    ApiTokenRow.id == token_id,
                    ApiTokenRow.revoked_at.is_(None),
                    or_(ApiTokenRow.last_used_at.is_(None), ApiTokenRow.last_used_at <= stale),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
