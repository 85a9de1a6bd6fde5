"""Users and API tokens: stored hashed, authenticate, expire, disable, update, revoke, last use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from proximity_sdk.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from proximity_sdk.models.user import Role, User
from proximity_sdk.store import Store
from proximity_sdk.store.base import utcnow
from proximity_sdk.store.tables import ApiTokenRow, UserRow
from proximity_sdk.store.users_repo import LAST_USED_RESOLUTION, hash_token


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


class _InThread:
    """Runs a call in a thread, so a test can see whether it waits on a lock held by the test."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], object]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def finished_within(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()


def test_update_renames_and_changes_role(store: Store) -> None:
    store.users.create("root", role=Role.ADMIN)
    carol = store.users.create("carol")
    renamed = store.users.update(carol.id, name="caroline")
    assert (renamed.id, renamed.name, renamed.role) == (carol.id, "caroline", Role.MEMBER)
    promoted = store.users.update("caroline", role="admin")
    assert promoted.role is Role.ADMIN and store.users.get(carol.id) == promoted
    assert store.users.update(carol.id) == promoted  # nothing asked, nothing changed
    assert store.users.update(carol.id, name="caroline") == promoted  # its own name is not a clash
    with pytest.raises(AlreadyExistsError, match="'root'"):
        store.users.update(carol.id, name="root")
    with pytest.raises(NotFoundError):
        store.users.update("nobody", role=Role.MEMBER)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"name": "a b"}, "name"), ({"name": ""}, "name"), ({"role": "root"}, "role"), ({"disabled": "yes"}, "disabled")],
)
def test_update_refuses_invalid_values(store: Store, change: dict[str, object], field: str) -> None:
    bob = store.users.create("bob")
    with pytest.raises(ValidationError) as info:
        store.users.update(bob.id, **change)  # type: ignore[arg-type]
    assert info.value.field == field
    assert store.users.get(bob.id) == bob


def test_the_last_enabled_admin_can_be_neither_demoted_nor_disabled(store: Store) -> None:
    root = store.users.create("root", role=Role.ADMIN)
    with pytest.raises(ConflictError, match="last enabled admin"):
        store.users.update(root.id, role=Role.MEMBER)
    with pytest.raises(ConflictError, match="last enabled admin"):
        store.users.update(root.id, disabled=True)
    with pytest.raises(ConflictError, match="last enabled admin"):
        store.users.set_disabled("root", disabled=True)
    # a disabled admin does not count as the other admin
    spare = store.users.create("spare", role=Role.ADMIN)
    store.users.update(spare.id, disabled=True)
    with pytest.raises(ConflictError):
        store.users.update(root.id, role=Role.MEMBER)
    assert store.users.get(root.id) == root
    # once another admin is enabled, either may step down
    store.users.update(spare.id, disabled=False)
    assert store.users.update(root.id, role=Role.MEMBER, name="ex-root").role is Role.MEMBER
    with pytest.raises(ConflictError):
        store.users.update(spare.id, disabled=True)
    # changes that keep the admin an enabled admin are not refused
    assert store.users.update(spare.id, name="boss", role=Role.ADMIN, disabled=False).name == "boss"


def test_a_demotion_waits_for_a_concurrent_one_and_then_sees_it(store: Store) -> None:
    first = store.users.create("first", role=Role.ADMIN)
    second = store.users.create("second", role=Role.ADMIN)
    with store.session(immediate=True) as s:
        # another agent demoting `first`, its transaction not yet committed
        s.execute(update(UserRow).where(UserRow.id == first.id).values(role=Role.MEMBER))
        other = _InThread(lambda: store.users.update(second.id, disabled=True))
        assert not other.finished_within(0.5), "the demotion did not wait for the other transaction"
    assert other.finished_within(30)
    assert isinstance(other.error, ConflictError) and "last enabled admin" in str(other.error)
    assert [u.name for u in store.users.list() if u.role is Role.ADMIN and not u.disabled] == ["second"]


def test_concurrent_demotions_leave_one_enabled_admin(store: Store) -> None:
    for round_ in range(4):
        admins = [store.users.create(f"admin-{round_}-{i}", role=Role.ADMIN) for i in range(3)]
        for user in store.users.list():
            if user.id not in {a.id for a in admins} and user.role is Role.ADMIN:
                store.users.update(user.id, role=Role.MEMBER)
        start = threading.Barrier(len(admins))

        def demote(user: User, start: threading.Barrier = start) -> object:
            start.wait()
            return store.users.update(user.id, role=Role.MEMBER)

        runs = [_InThread(lambda user=user: demote(user)) for user in admins]  # type: ignore[misc]
        assert all(run.finished_within(60) for run in runs)
        errors = [run.error for run in runs if run.error is not None]
        assert len(errors) == 1 and isinstance(errors[0], ConflictError), errors
        left = [u for u in store.users.list() if u.role is Role.ADMIN and not u.disabled]
        assert len(left) == 1


def test_revoke_keeps_the_record_and_stops_the_token_at_once(store: Store) -> None:
    store.users.create("alice")
    kept, kept_token = store.users.issue_token("alice", name="kept")
    gone, gone_token = store.users.issue_token("alice", name="gone")
    assert store.users.authenticate(gone_token) is not None
    revoked = store.users.revoke_token(gone.id)
    assert revoked.id == gone.id and revoked.revoked_at is not None
    assert revoked.revoked_at <= utcnow()
    assert store.users.authenticate(gone_token) is None  # no cached success survives a revoke
    assert store.users.authenticate(kept_token) is not None
    assert store.users.token(gone.id) == revoked
    assert store.users.token(kept.id).revoked_at is None
    assert [t.name for t in store.users.tokens("alice")] == ["kept"]
    assert [(t.name, t.revoked_at is None) for t in store.users.tokens("alice", include_revoked=True)] == [
        ("kept", True),
        ("gone", False),
    ]
    with pytest.raises(NotFoundError, match="already revoked"):
        store.users.revoke_token(gone.id)
    with pytest.raises(NotFoundError):
        store.users.revoke_token("no-such-token")
    with pytest.raises(NotFoundError):
        store.users.token("no-such-token")


def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    store.users.create("alice")
    record, token = store.users.issue_token("alice")
    assert store.users.token(record.id).last_used_at is None
    before = utcnow()
    assert store.users.authenticate(token) is not None
    first_use = store.users.token(record.id).last_used_at
    assert first_use is not None and first_use >= before
    for _ in range(3):
        assert store.users.authenticate(token) is not None
    assert store.users.token(record.id).last_used_at == first_use
    stale = utcnow() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    with store.session() as s:
        s.execute(update(ApiTokenRow).where(ApiTokenRow.id == record.id).values(last_used_at=stale))
    assert store.users.authenticate(token) is not None
    refreshed = store.users.token(record.id).last_used_at
    assert refreshed is not None and refreshed > stale + LAST_USED_RESOLUTION


def test_authenticating_a_recently_used_token_takes_no_write_lock(store: Store) -> None:
    user = store.users.create("alice")
    record, token = store.users.issue_token("alice")
    assert store.users.authenticate(token) == user  # records the use: the next minute is write-free
    # Another writer holds the database (SQLite: BEGIN IMMEDIATE) and the token row (PostgreSQL).
    with store.session(immediate=True) as s:
        s.execute(select(ApiTokenRow.id).where(ApiTokenRow.id == record.id).with_for_update()).all()
        fresh = _InThread(lambda: store.users.authenticate(token))
        assert fresh.finished_within(5), "authenticating waited for the writer"
        assert fresh.error is None and fresh.result == user
    # the probe is able to see a write: a stale last use must be written, so then it waits
    stale_use = utcnow() - 2 * LAST_USED_RESOLUTION
    with store.session() as s:
        s.execute(update(ApiTokenRow).where(ApiTokenRow.id == record.id).values(last_used_at=stale_use))
    with store.session(immediate=True) as s:
        s.execute(select(ApiTokenRow.id).where(ApiTokenRow.id == record.id).with_for_update()).all()
        stale = _InThread(lambda: store.users.authenticate(token))
        assert not stale.finished_within(0.5), "a stale last use was not written"
    assert stale.finished_within(30) and stale.error is None and stale.result == user


def test_issue_token_for_creates_the_user_once_and_never_promotes(store: Store) -> None:
    user, record, token, created = store.users.issue_token_for("boss", role=Role.ADMIN, name="first")
    assert created and user.role == Role.ADMIN and record.name == "first"
    assert store.users.authenticate(token) == user
    again = store.users.issue_token_for("boss", role=Role.ADMIN)
    assert again[0] == user and again[3] is False and again[2] != token
    store.users.create("worker", role=Role.MEMBER)
    with pytest.raises(ValidationError, match="is a member, not an admin"):
        store.users.issue_token_for("worker", role=Role.ADMIN)
    assert store.users.tokens("worker") == []
