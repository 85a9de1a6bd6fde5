"""Secrets a command needs (a token secret, a password): from a file, stdin, the environment or a prompt;
never from the command line, where other users see it (ps) and the shell history keeps it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from proximity_sdk.errors import ValidationError

__all__ = ["read_secret"]


def read_secret(*, path: str | None, env: str, what: str, field: str) -> str:
    if path == "-":
        value = sys.stdin.readline().strip()
    elif path is not None:
        try:
            value = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise ValidationError(f"{what} file {path!r} cannot be read: {exc.strerror}", field=field) from None
    elif os.environ.get(env):
        value = os.environ[env]
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{what}: ")
    else:
        raise ValidationError(
            f"{what} missing",
            field=field,
            hint=f"Give it in a file (--{field.replace('_', '-')}-file PATH, '-' for stdin) or in ${env}",
        )
    if not value:
        raise ValidationError(f"{what} is empty", field=field)
    return value
