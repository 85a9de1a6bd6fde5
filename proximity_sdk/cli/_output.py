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


def table(
    console: Console, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "nothing to show"
) -> None:
    """Columns two spaces apart, the header bold, each column as wide as its widest cell; wider
    than the console, the widest columns give way and their cells fold onto more lines.

    Laid out here rather than by rich's ``Table``, whose measuring took 60 ms for the catalog's 91
    rows: a fifth of ``proximity catalog list`` (bench/cli_startup.py). The layout is the one rich
    drew with ``box=None, pad_edge=False`` (tests/cli/test_output.py compares them)."""
    from rich.text import Text

    body = [[text(cell) for cell in row] for row in rows]
    if not body:
        console.print(f"[dim]{empty}[/dim]")
        return
    widths = [
        max(_width(line) for cell in [name, *(row[i] for row in body)] for line in cell.split("\n"))
        for i, name in enumerate(columns)
    ]
    _fit(widths, console.width - _GAP * (len(widths) - 1))
    header, *lines = [_layout(list(columns), widths)] + [_layout(row, widths) for row in body]
    console.print(Text("\n".join(header), style="bold"), soft_wrap=True)
    console.print(Text("\n".join(line for row in lines for line in row)), soft_wrap=True)


_GAP = 2  # spaces between two columns


def _width(value: str) -> int:
    from rich.cells import cell_len

    return cell_len(value)


def _fit(widths: list[int], room: int) -> None:
    """Narrow the widest columns, one cell at a time, until they fit ``room`` (or are 1 wide)."""
    excess = sum(widths) - room
    while excess > 0:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 1:
            return
        widths[widest] -= 1
        excess -= 1


def _fold(line: str, width: int) -> list[str]:
    """``line`` in pieces of at most ``width`` cells, broken at spaces where a word fits."""
    from rich.cells import get_character_cell_size

    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if _width(candidate) <= width:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        while _width(word) > width:  # a word longer than the column is cut
            cut, used = 0, 0
            while cut < len(word) and used + get_character_cell_size(word[cut]) <= width:
                used += get_character_cell_size(word[cut])
                cut += 1
            cut = max(cut, 1)
            pieces.append(word[:cut])
            word = word[cut:]
        current = word
    pieces.append(current)
    return pieces


def _layout(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One row as its physical lines, each cell padded to its column's width."""
    folded = [
        [piece for line in cell.split("\n") for piece in _fold(line, width)]
        for cell, width in zip(cells, widths, strict=True)
    ]
    height = max(len(pieces) for pieces in folded)
    return [
        (" " * _GAP).join(
            (pieces[n] if n < len(pieces) else "") + " " * (width - _width(pieces[n] if n < len(pieces) else ""))
            for pieces, width in zip(folded, widths, strict=True)
        )
        for n in range(height)
    ]


def detail(console: Console, fields: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(
        box=None,
        show_header=False,
        pad_edge=False,
        title=Text(title) if title else None,
        title_justify="left",
        title_style="bold",
    )
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in fields:
        grid.add_row(name, Text(text(value)))
    console.print(grid)
