"""Users and API tokens: stored hashed, authenticate, expire, disable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from proximity_sdk.errors import AlreadyExistsError, NotFoundError, ValidationError
from proximity_sdk.models.user import Role
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import ApiTokenRow
from proximity_sdk.store.users_repo import hash_token


def test_create_get_list(store: Store) -> None:
    admin = store.users.create("alice", role="admin")
    bob = store.users.create("bob")
    assert admin.role is Role.ADMIN
    assert bob.role is Role.MEMBER
    assert store.users.get("alice") == admin
    assert store.users.get(bob.id) == bob
    assert [u.name for u in store.users.list()] == ["alice", "bob"]
    with pytest.raises(AlreadyExistsError):
        store.users.create("alice")
    with pytest.raises(NotFoundError):
        store.users.get("carol")


@pytest.mark.parametrize(
    ("name", "role", "field"), [("", "member", "name"), ("a b", "member", "name"), ("x", "root", "role")]
)
def test_invalid_users_are_refused(store: Store, name: str, role: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.users.create(name, role=role)
    assert info.value.field == field


def test_tokens_are_stored_hashed_and_authenticate(store: Store) -> None:
    user = store.users.create("alice", role=Role.ADMIN)
    record, token = store.users.issue_token("alice", name="laptop")
    assert token.startswith("pxt_")
    assert token not in repr(record)
    with store.session() as s:
        stored = s.execute(select(ApiTokenRow.token_hash)).scalars().all()
    assert stored == [hash_token(token)]
    assert token not in stored[0]
    assert store.users.authenticate(token) == user
    assert store.users.authenticate(token + "x") is None
    assert store.users.tokens("alice")[0].last_used_at is not None
    store.users.revoke_token(record.id)
    assert store.users.authenticate(token) is None


def test_expired_tokens_and_disabled_users_do_not_authenticate(store: Store) -> None:
    store.users.create("bob")
    _, old = store.users.issue_token("bob", expires_at=utcnow() - timedelta(seconds=1))
    _, fresh = store.users.issue_token("bob", name="ci", expires_at=utcnow() + timedelta(hours=1))
    assert store.users.authenticate(old) is None
    assert store.users.authenticate(fresh) is not None
    store.users.set_disabled("bob", disabled=True)
    assert store.users.authenticate(fresh) is None
