"""The CLI's tables: laid out by `cli._output.table` as rich's `Table(box=None, pad_edge=False)`
laid them out before (the same bytes where they fit), folding onto more lines where they do not."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from proximity_sdk.cli._output import table, text

COLUMNS = ("ID", "NAME", "VERSION", "DESCRIPTION")
ROWS: list[Sequence[Any]] = [
    ("gitea", "Gitea", "1.22", "A painless self-hosted Git service."),
    ("nextcloud", "Nextcloud", None, "Files, calendar, contacts — on your own server"),
    ("pihole", "Pi-hole", "2024.07.0", ["dns", "ad blocking"]),
    ("wide", "全角の名前", "1", "cells twice as wide as their characters"),
]


def _console(width: int, *, terminal: bool = False) -> Console:
    return Console(
        file=io.StringIO(),
        width=width,
        highlight=False,
        soft_wrap=not terminal,
        emoji=False,
        force_terminal=terminal,
        color_system="standard" if terminal else None,
    )


def _rich(console: Console, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(text(c)) for c in row))
    console.print(grid)


def _out(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_a_table_that_fits_is_byte_for_byte_what_rich_drew() -> None:
    ours, theirs = _console(200), _console(200)
    table(ours, COLUMNS, ROWS)
    _rich(theirs, COLUMNS, ROWS)
    assert _out(ours) == _out(theirs)
    lines = _out(ours).splitlines()
    assert lines[0].startswith("ID         NAME") and lines[2].split("  ")[2].strip() == "-"  # None as "-"


def test_on_a_terminal_only_the_header_is_bold() -> None:
    console = _console(200, terminal=True)
    table(console, COLUMNS, ROWS)
    header, *body = _out(console).splitlines()
    assert header.startswith("\x1b[1mID") and header.endswith("\x1b[0m")
    assert body and not any("\x1b[" in line for line in body)


@pytest.mark.parametrize("width", [30, 44, 60])
def test_a_table_wider_than_the_console_folds_its_widest_cells(width: int) -> None:
    console = _console(width)
    table(console, COLUMNS, ROWS)
    lines = _out(console).splitlines()
    from rich.cells import cell_len

    assert all(cell_len(line) <= width for line in lines), lines
    # nothing is lost: each cell's characters are in the output, in order
    flat = "".join(_out(console).split())
    for row in [COLUMNS, *ROWS]:
        for cell in row:
            rest = iter(flat)
            assert all(char in rest for char in "".join(text(cell).split())), cell
    # a long word is cut only when it cannot fit a line of its column
    assert width < 44 or "painless" in _out(console)


def test_an_empty_table_says_so() -> None:
    console = _console(80)
    table(console, COLUMNS, [], empty="no catalog app matches")
    assert _out(console) == "no catalog app matches\n"


def test_markup_in_data_is_shown_as_it_is() -> None:
    console = _console(200)
    table(console, ("NAME",), [("[bold]x[/bold]",)])
    assert "[bold]x[/bold]" in _out(console)
