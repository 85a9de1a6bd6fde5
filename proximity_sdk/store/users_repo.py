"""Users and their API tokens (stored as SHA-256 hashes; the token is shown once, at issue)."""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proximity_sdk.errors import AlreadyExistsError, NotFoundError, ValidationError
from proximity_sdk.models.user import ApiToken, Role, User
from proximity_sdk.store._common import Context
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import ApiTokenRow, UserRow

__all__ = ["TOKEN_PREFIX", "UsersRepository", "hash_token"]

TOKEN_PREFIX = "pxt_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


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
    )


def _find(s: Session, id_or_name: str) -> UserRow:
    row = (
        s.get(UserRow, id_or_name)
        or s.execute(select(UserRow).where(UserRow.name == id_or_name)).scalar_one_or_none()
    )
    if row is None:
        raise NotFoundError(f"no user {id_or_name!r}")
    return row


class UsersRepository:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def create(self, name: str, *, role: Role | str = Role.MEMBER) -> User:
        if not _USER_NAME.match(name):
            raise ValidationError(
                f"user name {name!r} must be 1-64 letters, digits or . _ @ - (first a letter or digit)",
                field="name",
            )
        try:
            role = Role(role)
        except ValueError:
            raise ValidationError(
                f"role {role!r} must be one of {[r.value for r in Role]}", field="role"
            ) from None
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

    def set_disabled(self, id_or_name: str, *, disabled: bool) -> User:
        with self._ctx.session(immediate=True) as s:
            row = _find(s, id_or_name)
            row.disabled = disabled
            s.flush()
            return _user(row)

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

    def tokens(self, id_or_name: str) -> builtins.list[ApiToken]:
        with self._ctx.session() as s:
            user = _find(s, id_or_name)
            rows = s.execute(
                select(ApiTokenRow).where(ApiTokenRow.user_id == user.id).order_by(ApiTokenRow.created_at)
            ).scalars()
            return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> None:
        with self._ctx.session(immediate=True) as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"no API token {token_id!r}")
            s.delete(row)

    def by_token_hash(self, token_hash: str) -> User | None:
        """The enabled user owning an unexpired token with this hash, else None."""
        with self._ctx.session(immediate=True) as s:
            found = s.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_hash == token_hash)
            ).first()
            if found is None:
                return None
            token, user = found[0], found[1]
            if user.disabled or (token.expires_at is not None and token.expires_at <= utcnow()):
                return None
            token.last_used_at = utcnow()
            return _user(user)

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None when unknown, expired or disabled."""
        return self.by_token_hash(hash_token(token))
