"""Which environment values are secrets, and how a secret is generated.

The naming rule (`is_secret_name`), applied to the name split on ``_``, ``.`` and ``-``,
upper-cased: a name is secret when

* a part is ``PASS``, ``PWD``, ``TOKEN``, ``REQUIREPASS`` or ``MASTERAUTH``, or a part ends with
  ``PASSWORD``, ``PASSWD`` or ``SECRET`` (``SECRETS`` too): ``DB_PASS``, ``GITEA__database__PASSWD``,
  ``SECRET_KEY_BASE``, ``JWT_SECRET``, ``SECRETS_email_password``;
* or the last part is ``KEY``, ``APIKEY`` or ``AUTHKEY`` and the one before is not ``ACCESS`` or
  ``PUBLIC`` (an access key id names an account, it does not protect it): ``APP_KEY``, ``TS_AUTHKEY``;
* and no part says it is about a secret rather than one: ``FILE``, ``PATH``, ``DIR``, ``LENGTH``,
  ``MIN``, ``MAX``, ``TTL``, ``EXPIRY``/``EXPIRE``/``EXPIRES``, ``LIFETIME``, ``ENABLED``/``ENABLE``,
  ``DISABLED``/``DISABLE``, ``REQUIRED``, ``RESET``, ``POLICY``, ``TYPE``, ``HOST``, ``PORT``,
  ``ALGORITHM``, ``ROTATION``, ``RANDOM``, ``ALLOW``, ``EMPTY``, ``GENERATE``
  (``MARIADB_RANDOM_ROOT_PASSWORD=1`` is a switch, not a password).

A value is only treated as a secret when it is a non-empty literal (not a switch such as
``true``, ``no`` or ``1``, not already a ``${...}`` reference). Generated values use letters and
digits (or hex/base64), so they are safe inside URLs and shell words.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets as _random
import string
from collections.abc import Mapping

from proximity_sdk.models.catalog import SecretSpec

__all__ = ["generate_secret", "infer_secret_spec", "is_secret_name", "is_secret_value"]

_SPLIT = re.compile(r"[_.\-]+")
_EXACT = frozenset({"PASS", "PWD", "TOKEN", "REQUIREPASS", "MASTERAUTH"})
_SUFFIXES = ("PASSWORD", "PASSWD", "SECRET", "SECRETS")
_KEY_PARTS = frozenset({"KEY", "APIKEY", "AUTHKEY"})
_NOT_SECRET_KEY_PREFIX = frozenset({"ACCESS", "PUBLIC"})
_EXCLUDED = frozenset(
    {
        "FILE", "PATH", "DIR", "LENGTH", "MIN", "MAX", "TTL", "EXPIRY", "EXPIRE", "EXPIRES",
        "LIFETIME", "ENABLED", "ENABLE", "DISABLED", "DISABLE", "REQUIRED", "RESET", "POLICY",
        "TYPE", "HOST", "PORT", "ALGORITHM", "ROTATION", "RANDOM", "ALLOW", "EMPTY", "GENERATE",
    }
)  # fmt: skip
_HASH_SUFFIXES = ("_SHA2", "_SHA256", "_HASH")
_FLAG_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "0", "1"})
_ALNUM = string.ascii_letters + string.digits


def is_secret_name(name: str) -> bool:
    """True when an environment variable (or command flag) of this name holds a secret."""
    parts = [p for p in _SPLIT.split(name.upper()) if p]
    if not parts or any(p in _EXCLUDED for p in parts):
        return False
    if any(p in _EXACT or p.endswith(_SUFFIXES) for p in parts):
        return True
    return parts[-1] in _KEY_PARTS and (len(parts) < 2 or parts[-2] not in _NOT_SECRET_KEY_PREFIX)


def is_secret_value(value: object) -> bool:
    """A literal worth replacing: a non-empty string, not a flag, not already a reference."""
    return isinstance(value, str) and bool(value.strip()) and value.lower() not in _FLAG_VALUES and "${" not in value


def infer_secret_spec(name: str, literal: str) -> SecretSpec:
    """The spec for a literal found in a catalog entry, from its name and the shape of its value."""
    upper = name.upper()
    if literal.startswith("base64:"):
        return SecretSpec(name=name, kind="app-key")
    for suffix in _HASH_SUFFIXES:
        if upper.endswith(suffix):
            return SecretSpec(name=name, kind="sha256", of=name[: -len(suffix)])
    is_password = any(p.endswith(("PASSWORD", "PASSWD")) or p in {"PASS", "PWD"} for p in _SPLIT.split(upper))
    return SecretSpec(name=name, kind="password", length=32 if is_password else 64)


def generate_secret(spec: SecretSpec, *, known: Mapping[str, str] | None = None) -> str:
    """A fresh random value for ``spec`` (``sha256`` hashes ``known[spec.of]``, which must exist)."""
    if spec.kind == "password":
        return "".join(_random.choice(_ALNUM) for _ in range(spec.length))
    if spec.kind == "hex":
        return _random.token_hex((spec.length + 1) // 2)[: spec.length]
    if spec.kind == "base64":
        return base64.b64encode(_random.token_bytes(spec.length)).decode("ascii")
    if spec.kind == "app-key":
        return "base64:" + base64.b64encode(_random.token_bytes(32)).decode("ascii")
    # sha256: the hash of another secret, for apps configured with a password digest
    source = (known or {}).get(spec.of or "")
    if source is None:
        raise KeyError(f"secret {spec.name} hashes {spec.of}, which has no value yet")
    return hashlib.sha256(source.encode("utf-8")).hexdigest()
