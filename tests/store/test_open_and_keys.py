"""Store.open: database and key file creation, reopening, wrong and missing keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from proximity_sdk.errors import SecretKeyError, ValidationError
from proximity_sdk.store import KEY_ENV, SecretBox, Store
from proximity_sdk.store._migrate import current_revision, head_revision
from proximity_sdk.store.crypto import read_key_file, write_key_file
from tests.store._helpers import raw_query

HOST = {"name": "pve1", "url": "https://pve1:8006", "token_id": "root@pam!px", "token_secret": "s3cret-token"}


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_default_open_creates_sqlite_database_and_private_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "fresh" / "proximity"
    old_umask = os.umask(0)  # even a permissive umask must not widen the key file's mode
    try:
        store = Store.open(data_dir=data)
    finally:
        os.umask(old_umask)
    try:
        assert store.dialect == "sqlite"
        assert (data / "proximity.db").is_file()
        assert current_revision(store.engine) == head_revision()
        key_file = data / "secret.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "proximity.db").stat().st_mode) == 0o600
        assert store.secrets.source == "file"
        assert not list(data.glob(".secret.key.*.tmp")), "temporary key files must not be left behind"
        host = store.hosts.add(**HOST)
    finally:
        store.close()
    with Store.open(data_dir=data) as again:
        assert again.hosts.credentials(host.id).token_secret is not None
        assert again.hosts.credentials(host.id).token_secret.get_secret_value() == "s3cret-token"  # type: ignore[union-attr]


def test_open_creates_and_reopens_on_each_database(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.open(database_url, data_dir=data) as store:
        host = store.hosts.add(**HOST)
        key = (data / "secret.key").read_text().strip()
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600
    # the same key given explicitly, from another data dir: the data is readable
    with Store.open(database_url, data_dir=tmp_path / "elsewhere", secret_key=key) as store:
        creds = store.hosts.credentials(host.id)
        assert creds.token_secret is not None
        assert creds.token_secret.get_secret_value() == "s3cret-token"
    assert not (tmp_path / "elsewhere" / "secret.key").exists(), "an explicit key must not create a key file"


def test_wrong_key_is_refused_at_open(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(database_url, data_dir=tmp_path / "a") as store:
        store.hosts.add(**HOST)
    wrong = SecretBox.generate_key()
    with pytest.raises(SecretKeyError, match="secret_key= is not the key"):
        Store.open(database_url, data_dir=tmp_path / "a", secret_key=wrong)
    monkeypatch.setenv(KEY_ENV, wrong)
    with pytest.raises(SecretKeyError, match="PROXIMITY_SECRET_KEY"):
        Store.open(database_url, data_dir=tmp_path / "a")
    monkeypatch.delenv(KEY_ENV)
    write_key_file(tmp_path / "b" / "secret.key", [wrong.encode()], replace=False)
    with pytest.raises(SecretKeyError, match="key file"):
        Store.open(database_url, data_dir=tmp_path / "b")


def test_missing_key_for_encrypted_database_is_refused_without_creating_one(database_url: str, tmp_path: Path) -> None:
    with Store.open(database_url, data_dir=tmp_path / "a"):
        pass
    with pytest.raises(SecretKeyError, match="no key was given") as info:
        Store.open(database_url, data_dir=tmp_path / "b")
    assert KEY_ENV in info.value.hint
    assert not (tmp_path / "b" / "secret.key").exists()


def test_env_key_is_used_when_no_argument(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    with Store.open(database_url, data_dir=tmp_path / "a") as store:
        assert store.secrets.source == "environment"
        store.hosts.add(**HOST)
    assert not (tmp_path / "a" / "secret.key").exists()
    monkeypatch.delenv(KEY_ENV)
    with Store.open(database_url, data_dir=tmp_path / "b", secret_key=key.encode()) as store:
        assert store.hosts.credentials("pve1").token_secret is not None


@pytest.mark.parametrize("bad", ["", "not-a-key", "c2hvcnQ="])
def test_malformed_key_is_a_validation_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="secret key") as info:
        Store.open(data_dir=tmp_path, secret_key=bad)
    assert info.value.field == "secret_key"


def test_key_check_canary_is_stored_encrypted(database_url: str, tmp_path: Path) -> None:
    with Store.open(database_url, data_dir=tmp_path / "a"):
        pass
    [(check,)] = raw_query(database_url, "SELECT key_check FROM settings")
    assert isinstance(check, str)
    assert check.startswith("gAAAAA")  # a Fernet token


def test_key_file_creation_race_keeps_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first, second = SecretBox.generate_key().encode(), SecretBox.generate_key().encode()
    assert write_key_file(path, [first], replace=False) is True
    assert write_key_file(path, [second], replace=False) is False
    assert read_key_file(path) == [first]
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_unsupported_database_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not supported") as info:
        Store.open("mysql://root@localhost/px", data_dir=tmp_path)
    assert info.value.field == "database_url"


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = Store.open(data_dir=tmp_path)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.hosts.list()


def test_in_memory_sqlite_is_one_database_across_threads(tmp_path: Path) -> None:
    import threading

    with Store.open("sqlite://", data_dir=tmp_path) as store:
        store.hosts.add(**HOST)
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(len(store.hosts.list())))
        thread.start()
        thread.join()
        assert seen == [1]
