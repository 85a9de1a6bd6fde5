"""`proximity config show`: the settings in effect and where each comes from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity_sdk.cli._exit import EXIT_OK
from proximity_sdk.cli._output import detail, print_json

if TYPE_CHECKING:
    from proximity_sdk.cli._context import Context

__all__ = ["show"]


def show(ctx: Context) -> int:
    shown = ctx.settings.public()
    if ctx.json:
        print_json(shown)
        return EXIT_OK
    rows: list[tuple[str, object]] = [
        ("config file", shown["config_path"] or "(none)"),
        ("profile", shown["profile"]),
        ("mode", shown["mode"]),
    ]
    for key, entry in shown.items():
        if isinstance(entry, dict):
            rows.append((key, f"{entry['value'] if entry['value'] is not None else '-'}  [{entry['source']}]"))
    detail(ctx.out, rows)
    return EXIT_OK
