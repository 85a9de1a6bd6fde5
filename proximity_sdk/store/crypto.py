"""Secrets at rest: Fernet encryption with a key from the caller, the environment or a 0600 key file.

Where the key comes from, first match wins:

1. ``secret_key=`` given to ``Store.open`` / ``Proximity.local``;
2. the environment variable ``PROXIMITY_SECRET_KEY``;
3. the key file ``secret.key`` in the data dir, created on first use (mode 0600) when the
   database holds no encrypted data yet.

Each source may hold several keys (comma, space or newline separated): the first encrypts,
all of them decrypt. That is what makes rotation safe (see ``Store.rotate_secret_key``): the key
file holds the new and the old key until every secret has been re-encrypted and committed.

A wrong key raises ``SecretKeyError``; a value is never handed back undecrypted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from proximity_sdk.errors import SecretKeyError, ValidationError

__all__ = [
    "KEY_ENV",
    "KEY_FILE_NAME",
    "KeySource",
    "SecretBox",
    "parse_keys",
    "read_key_file",
    "write_key_file",
]

KEY_ENV = "PROXIMITY_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
KeySource = Literal["argument", "environment", "file"]

_log = logging.getLogger(__name__)
_SEPARATORS = re.compile(r"[\s,]+")
# the canary's plaintext: decrypting it proves the key is the one the database was written with
_CANARY = "proximity-key-check-v1"


def parse_keys(value: str | bytes, *, origin: str) -> list[bytes]:
    """Split and check one or more Fernet keys (url-safe base64 of 32 bytes)."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    keys = [k for k in _SEPARATORS.split(text.strip()) if k]
    if not keys:
        raise ValidationError(f"the secret key from {origin} is empty", field="secret_key")
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ValidationError(
                f"the secret key from {origin} is not a Fernet key (url-safe base64 of 32 bytes)",
                field="secret_key",
                hint="Generate one with SecretBox.generate_key()",
            ) from None
    return [k.encode() for k in keys]


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file that only its owner can read (as the agent's ``secret_key_file``:
    a key others could read has leaked already, so it is refused rather than used)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretKeyError(
            f"key file {path} is readable or writable by others (mode {mode:o}): refused",
            hint=f"chmod 600 {path} (and rotate the key if others could read it)",
        )
    return parse_keys(path.read_bytes(), origin=f"key file {path}")


def write_key_file(path: Path, keys: Sequence[bytes], *, replace: bool) -> bool:
    """Write ``keys`` to ``path`` atomically with mode 0600 from the first byte.

    The content goes to a temporary file opened 0600 and fsynced, then is linked into place
    (``replace=False``: fails if the file exists, so two first starts cannot both create a key)
    or renamed over it (``replace=True``). Returns False when ``replace=False`` lost that race.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow the mode; make it exact
        os.write(fd, b"\n".join(keys) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
            tmp = None  # type: ignore[assignment]
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SecretBox:
    """Encrypts and decrypts the secret columns. Holds one or more keys; the first encrypts.

    When the keys came from a key file, a failed decryption re-reads the file once: another
    process may have rotated the key since this one started.
    """

    def __init__(self, keys: Sequence[bytes], *, source: KeySource, key_file: Path | None = None) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._keys = list(keys)
        self._fernet = MultiFernet([Fernet(k) for k in self._keys])
        self.source: KeySource = source
        self.key_file = key_file

    def __repr__(self) -> str:
        return f"SecretBox(source={self.source!r}, keys={len(self._keys)})"

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key, as text (store it like a password)."""
        return Fernet.generate_key().decode()

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, what: str = "a stored secret") -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            if self._reload():
                with contextlib.suppress(InvalidToken):
                    return self._fernet.decrypt(token.encode()).decode()
            raise SecretKeyError(f"cannot decrypt {what}: the secret key is not the one it was written with") from None

    def encrypt_json(self, value: Any) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: str, *, what: str = "a stored secret") -> Any:
        return json.loads(self.decrypt(token, what=what))

    def reencrypt(self, token: str, *, what: str = "a stored secret") -> str:
        """The same plaintext encrypted with the first key (for rotation)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"cannot re-encrypt {what}: no key at hand decrypts it") from None

    def with_primary(self, key: bytes) -> SecretBox:
        """A box that encrypts with ``key`` and still decrypts with every current key."""
        return SecretBox([key, *(k for k in self._keys if k != key)], source=self.source, key_file=self.key_file)

    # --- the key check (canary) -------------------------------------------------------------

    def make_key_check(self) -> str:
        return self.encrypt(_CANARY)

    def verify_key_check(self, token: str) -> None:
        """Raise SecretKeyError unless one of our keys decrypts the database's canary."""
        try:
            ok = self._fernet.decrypt(token.encode()).decode() == _CANARY
        except InvalidToken:
            ok = False
        if not ok:
            where = {
                "argument": "secret_key=",
                "environment": f"${KEY_ENV}",
                "file": f"key file {self.key_file}",
            }
            raise SecretKeyError(
                f"the secret key from {where[self.source]} is not the key this database's secrets were encrypted with"
            )

    def _reload(self) -> bool:
        if self.source != "file" or self.key_file is None:
            return False
        try:
            keys = read_key_file(self.key_file)
        except (OSError, ValidationError):
            return False
        if keys == self._keys:
            return False
        self._keys = keys
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        return True
