"""Find the secret key at open and check it against the database's key-check canary."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, select, update

from proximity_sdk.errors import SecretKeyError
from proximity_sdk.store.crypto import (
    KEY_ENV,
    KEY_FILE_NAME,
    SecretBox,
    parse_keys,
    read_key_file,
    write_key_file,
)
from proximity_sdk.store.tables import SettingsRow

__all__ = ["open_secret_box"]


def _stored_check(engine: Engine) -> str | None:
    with engine.begin() as conn:
        return conn.execute(select(SettingsRow.key_check).where(SettingsRow.id == 1)).scalar_one()


def _find_box(secret_key: str | bytes | None, data_dir: Path, *, fresh: bool) -> SecretBox:
    if secret_key is not None:
        return SecretBox(parse_keys(secret_key, origin="secret_key="), source="argument")
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return SecretBox(parse_keys(env, origin=f"${KEY_ENV}"), source="environment")
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        if not fresh:
            raise SecretKeyError(
                f"this database holds encrypted secrets, but no key was given and {path} does not exist",
                hint=f"Set {KEY_ENV} (or secret_key=) to the key the database was created with, "
                "or restore the key file",
            )
        # if another process won the race to create it, theirs is the key: read it below
        write_key_file(path, [SecretBox.generate_key().encode()], replace=False)
    return SecretBox(read_key_file(path), source="file", key_file=path)


def open_secret_box(engine: Engine, secret_key: str | bytes | None, data_dir: Path) -> SecretBox:
    """The SecretBox for this database; SecretKeyError if the key is not the database's key."""
    check = _stored_check(engine)
    box = _find_box(secret_key, data_dir, fresh=check is None)
    if check is None:
        # first open: record the canary unless a concurrent first open did (then we check theirs)
        with engine.begin() as conn:
            conn.execute(
                update(SettingsRow)
                .where(SettingsRow.id == 1, SettingsRow.key_check.is_(None))
                .values(key_check=box.make_key_check())
            )
        check = _stored_check(engine)
        assert check is not None
    box.verify_key_check(check)
    return box
