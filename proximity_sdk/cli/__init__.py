"""`proximity`: the command line.

Only the standard library is imported until a command runs (``proximity --help`` stays fast):
the parser (``_parser``) names each command's handler as ``"module:function"`` and ``main``
imports that module when the command is chosen. Exit codes are listed in ``_exit``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from proximity_sdk.cli._exit import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024**3:.1f} GiB"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain-text table (used by `proximity sandbox`, which prints without rich)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from proximity_sdk.cli._parser import build_parser as build

    return build()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # a group without its subcommand (`proximity apps`) prints that group's help
        (getattr(args, "group_parser", None) or parser).print_help()
        return EXIT_USAGE
    from proximity_sdk.cli._run import run

    return run(args, handler)
