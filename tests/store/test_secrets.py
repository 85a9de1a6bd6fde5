"""Secrets at rest: never in plaintext in the database, never in repr or list results; key rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update

from proximity_sdk.errors import SecretKeyError, ValidationError
from proximity_sdk.models.ssh import SshAccess
from proximity_sdk.store import KEY_ENV, SecretBox, Store
from proximity_sdk.store.crypto import read_key_file
from proximity_sdk.store.tables import AppSecretRow, secret_columns
from tests.store._helpers import logical_dump, raw_dump, url_of

TOKEN_SECRET = "tok-PLAINTEXT-4f1c9a"
PASSWORD = "pw-PLAINTEXT-77ab02"
ROOT_PASSWORD = "root-PLAINTEXT-9d3e"
APP_SECRET = "db-PLAINTEXT-c0ffee"
SSH_KEY_BODY = "key-PLAINTEXT-5eed"
# an SSH key given as contents (how the remote SDK sends it), not as a path
SSH_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH_KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
PLAINTEXTS = [TOKEN_SECRET, PASSWORD, ROOT_PASSWORD, APP_SECRET, SSH_KEY_BODY]


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _fill(store: Store) -> str:
    store.hosts.add(
        name="pve1",
        url="https://pve1:8006",
        token_id="root@pam!px",
        token_secret=TOKEN_SECRET,
        ssh=SshAccess(key_file=SSH_KEY, known_hosts="/etc/ssh/ssh_known_hosts"),
    )
    store.hosts.add(
        name="pve2",
        url="https://pve2:8006",
        user="root@pam",
        password=PASSWORD,
        ssh=SshAccess(key_file="/root/.ssh/id_ed25519"),
    )
    app = store.apps.create(hostname="git-1", host_id="pve1", root_password=ROOT_PASSWORD)
    store.apps.set_secrets(app.id, {"DB_PASSWORD": APP_SECRET, "OTHER": "x" * 12})
    return app.id


def _assert_readable(store: Store, app_id: str) -> None:
    pve1 = store.hosts.credentials("pve1")
    pve2 = store.hosts.credentials("pve2")
    assert pve1.token_secret is not None
    assert pve1.token_secret.get_secret_value() == TOKEN_SECRET
    assert pve2.password is not None
    assert pve2.password.get_secret_value() == PASSWORD
    root = store.apps.root_password(app_id)
    assert root is not None
    assert root.get_secret_value() == ROOT_PASSWORD
    assert store.apps.secrets(app_id)["DB_PASSWORD"].get_secret_value() == APP_SECRET
    ssh1, ssh2 = pve1.ssh, pve2.ssh
    assert ssh1 is not None and ssh1.key_file == SSH_KEY and ssh1.known_hosts == "/etc/ssh/ssh_known_hosts"
    assert ssh2 is not None and ssh2.key_file == "/root/.ssh/id_ed25519"  # a path is not a secret
    listed = store.hosts.get("pve1").ssh
    assert listed is not None and listed.key_file is None  # key contents are never handed out by reads


def test_secrets_are_not_in_the_raw_database(store: Store) -> None:
    app_id = _fill(store)
    database_url = url_of(store)
    _assert_readable(store, app_id)
    dump = raw_dump(database_url)
    assert b"git-1" in dump, "the dump must really contain the data (sanity check of the check)"
    for plaintext in PLAINTEXTS:
        assert plaintext.encode() not in dump


def test_secrets_never_appear_in_repr_or_list_results(store: Store) -> None:
    app_id = _fill(store)
    outputs = [
        repr(store.hosts.list()),
        repr(store.hosts.get("pve1")),
        store.hosts.get("pve1").model_dump_json(),
        repr(store.hosts.credentials("pve1")),
        str(store.hosts.credentials("pve2")),
        repr(store.apps.list()),
        store.apps.get(app_id).model_dump_json(),
        repr(store.apps.secrets(app_id)),
        repr(store.secrets),
        repr(store),
    ]
    for text in outputs:
        for plaintext in PLAINTEXTS:
            assert plaintext not in text
    assert "root_password" not in store.apps.get(app_id).model_dump()


def test_every_secret_like_column_is_marked_for_rotation() -> None:
    marked = {(t, c) for t, cols in secret_columns().items() for c in cols}
    assert marked == {
        ("settings", "key_check"),
        ("hosts", "secret"),
        ("hosts", "ssh_key"),
        ("hosts", "registries"),
        ("apps", "root_password"),
        ("app_secrets", "value"),
        ("backup_targets", "options"),
    }


def test_rotation_with_key_file_reencrypts_everything(store: Store, tmp_path: Path) -> None:
    app_id = _fill(store)
    database_url = url_of(store)
    key_file = tmp_path / "data" / "secret.key"
    [old_key] = read_key_file(key_file)
    before = logical_dump(database_url)

    new_key = store.rotate_secret_key()

    assert read_key_file(key_file) == [new_key.encode()]
    _assert_readable(store, app_id)
    after = logical_dump(database_url)
    assert after != before
    for plaintext in PLAINTEXTS:
        assert plaintext not in after
    # every value now opens with the new key alone, and the old key alone is refused at open
    with Store.open(database_url, data_dir=tmp_path / "other", secret_key=new_key) as fresh:
        _assert_readable(fresh, app_id)
    with pytest.raises(SecretKeyError):
        Store.open(database_url, data_dir=tmp_path / "other", secret_key=old_key)


def test_interrupted_rotation_loses_nothing(store: Store, tmp_path: Path) -> None:
    app_id = _fill(store)
    database_url = url_of(store)
    key_file = tmp_path / "data" / "secret.key"
    [old_key] = read_key_file(key_file)
    # one value written under a key nobody has: rotation meets it after re-encrypting others
    foreign = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    broken = store.apps.create(hostname="broken-1", host_id="pve1")
    store.apps.set_secrets(broken.id, {"ZZZ_UNREADABLE": "placeholder"})
    with store.session() as s:
        s.execute(update(AppSecretRow).where(AppSecretRow.name == "ZZZ_UNREADABLE").values(value=foreign))
    before = logical_dump(database_url)

    with pytest.raises(SecretKeyError, match=r"app_secrets\.value"):
        store.rotate_secret_key()

    # the transaction was rolled back: every row is exactly what it was
    assert logical_dump(database_url) == before
    keys = read_key_file(key_file)
    # during rotation the file holds the new and the old key, so both decrypt
    assert len(keys) == 2
    assert keys[1] == old_key
    _assert_readable(store, app_id)
    with Store.open(database_url, data_dir=tmp_path / "x", secret_key=old_key) as with_old:
        _assert_readable(with_old, app_id)
    with Store.open(database_url, data_dir=tmp_path / "data") as reopened:
        _assert_readable(reopened, app_id)
        # repaired, a second rotation completes and tidies the key file to one key
        with reopened.session() as s:
            s.execute(
                update(AppSecretRow)
                .where(AppSecretRow.name == "ZZZ_UNREADABLE")
                .values(value=reopened.secrets.encrypt("found"))
            )
        final = reopened.rotate_secret_key()
        assert read_key_file(key_file) == [final.encode()]
        _assert_readable(reopened, app_id)


def test_rotation_with_explicit_key_needs_the_new_key(database_url: str, tmp_path: Path) -> None:
    old_key = SecretBox.generate_key()
    with Store.open(database_url, data_dir=tmp_path, secret_key=old_key) as store:
        app_id = _fill(store)
        with pytest.raises(ValidationError, match="give new_key") as info:
            store.rotate_secret_key()
        assert info.value.field == "new_key"
        new_key = SecretBox.generate_key()
        assert store.rotate_secret_key(new_key) == new_key
        _assert_readable(store, app_id)
    assert not (tmp_path / "secret.key").exists()
    with Store.open(database_url, data_dir=tmp_path, secret_key=new_key) as store:
        _assert_readable(store, app_id)
    with pytest.raises(SecretKeyError):
        Store.open(database_url, data_dir=tmp_path, secret_key=old_key)


def test_another_process_follows_a_rotated_key_file(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.open(database_url, data_dir=data) as first, Store.open(database_url, data_dir=data) as second:
        app_id = _fill(first)
        first.rotate_secret_key()
        # `second` still holds the old key in memory; it re-reads the key file on failure
        _assert_readable(second, app_id)


def test_decrypt_with_wrong_key_raises_never_returns_ciphertext() -> None:
    box = SecretBox([Fernet.generate_key()], source="argument")
    other = SecretBox([Fernet.generate_key()], source="argument")
    token = box.encrypt("value")
    with pytest.raises(SecretKeyError, match="cannot decrypt"):
        other.decrypt(token)
    with pytest.raises(SecretKeyError):
        box.decrypt("not-a-token")
    assert box.decrypt(token) == "value"
    assert box.decrypt_json(box.encrypt_json({"a": [1, 2]})) == {"a": [1, 2]}
