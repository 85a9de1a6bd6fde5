"""Asking before a destructive command: on a terminal a question, elsewhere ``--yes``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from proximity_sdk.errors import ValidationError

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context

__all__ = ["confirm"]


def confirm(ctx: Context, question: str) -> None:
    """Ask on a terminal; elsewhere --yes is required (a script must say it means it)."""
    if getattr(ctx.args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise ValidationError(f"{question}: confirm with --yes (stdin is not a terminal)", field="yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in {"y", "yes"}:
        raise ValidationError("not confirmed; nothing was changed", field="yes")
