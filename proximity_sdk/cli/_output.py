"""Output: JSON (pydantic ``model_dump(mode="json")``) or rich tables and detail views."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ago", "detail", "gib", "jsonable", "print_json", "print_json_line", "table"]


def jsonable(value: Any) -> Any:
    """Models, lists of them and plain values as JSON-ready data."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), indent=2) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024**3:.1f} GiB"


def ago(moment: datetime | None) -> str:
    """A short local time: HH:MM:SS today, else the date and time."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    now = datetime.now().astimezone()
    return local.strftime("%H:%M:%S" if local.date() == now.date() else "%Y-%m-%d %H:%M")


def text(value: Any) -> str:
    if value is None or value == "" or value == () or value == []:
        return "-"
    if isinstance(value, datetime):
        return ago(value)
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    return str(getattr(value, "value", value))


def table(console: Console, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
          empty: str = "nothing to show") -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        grid.add_column(name, overflow="fold")
    count = 0
    for row in rows:
        grid.add_row(*(Text(text(c)) for c in row))  # Text: no markup in data
        count += 1
    if count == 0:
        console.print(f"[dim]{empty}[/dim]")
        return
    console.print(grid)


def detail(console: Console, fields: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, show_header=False, pad_edge=False, title=Text(title) if title else None,
                 title_justify="left", title_style="bold")
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in fields:
        grid.add_row(name, Text(text(value)))
    console.print(grid)
