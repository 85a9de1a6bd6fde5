"""User changes the users repository does not offer yet (rename, change role, find a token by id).

They belong in ``proximity_sdk/store/users_repo.py`` (``UsersRepository.update`` and
``UsersRepository.token``); they live here, on the store's public session, until they move.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.user import ApiToken, Role, User
from proximity_sdk.store import Store
from proximity_sdk.store.tables import ApiTokenRow, UserRow
from proximity_sdk.store.users_repo import _USER_NAME  # the same rule as at creation

__all__ = ["find_token", "update_user"]


def find_token(store: Store, token_id: str) -> ApiToken:
    with store.session() as s:
        row = s.get(ApiTokenRow, token_id) if token_id else None
        if row is None:
            raise NotFoundError(f"no API token {token_id!r}")
        user_id = row.user_id
    return next(t for t in store.users.tokens(user_id) if t.id == token_id)


def update_user(store: Store, user_id: str, *, name: str | None = None, role: Role | None = None,
                disabled: bool | None = None) -> User:
    """Change the given fields. Refuses to leave the agent without an enabled admin."""
    if name is not None and not _USER_NAME.match(name):
        raise ValidationError(f"user name {name!r} must be 1-64 letters, digits or . _ @ - "
                              "(first a letter or digit)", field="user.name")
    try:
        with store.session(immediate=True) as s:
            row = s.get(UserRow, user_id, with_for_update=True) if user_id else None
            if row is None:
                raise NotFoundError(f"no user {user_id!r}")
            demoted = (role is not None and role != Role.ADMIN) or disabled is True
            if row.role == Role.ADMIN and not row.disabled and demoted:
                admins = s.execute(select(func.count()).select_from(UserRow).where(
                    UserRow.role == Role.ADMIN, UserRow.disabled.is_(False))).scalar_one()
                if admins <= 1:
                    raise ConflictError(f"{row.name!r} is the last enabled admin",
                                        hint="Make another user admin first")
            if name is not None:
                row.name = name
            if role is not None:
                row.role = role
            if disabled is not None:
                row.disabled = disabled
            s.flush()
            return User(id=row.id, name=row.name, role=row.role, disabled=row.disabled, created_at=row.created_at)
    except IntegrityError:
        raise AlreadyExistsError(f"a user named {name!r} already exists") from None
