"""A catalog source reading a directory: one JSON object per ``*.json`` file (``index.json`` excepted)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from proximity_sdk.plugins.sources import RawEntry

__all__ = ["INDEX_FILE", "DirectorySource"]

# the original catalog keeps a list of files in index.json; it is not an entry
INDEX_FILE = "index.json"


class DirectorySource:
    """Entries from ``*.json`` files directly in ``directory`` (not recursive), in name order."""

    def __init__(self, directory: str | Path, *, name: str | None = None) -> None:
        self.directory = Path(directory)
        self._name = name or f"path:{self.directory}"

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.directory)!r}, name={self._name!r})"

    def list_entries(self) -> Iterator[RawEntry]:
        try:
            files = sorted(p for p in self.directory.iterdir() if p.suffix == ".json" and p.name != INDEX_FILE)
        except FileNotFoundError:
            yield RawEntry(str(self.directory), None, "the catalog directory does not exist")
            return
        except NotADirectoryError:
            yield RawEntry(str(self.directory), None, "not a directory; give a directory of *.json files")
            return
        for path in files:
            yield read_entry_file(path)

    def get_entry(self, app_id: str) -> RawEntry | None:
        guess = self.directory / f"{app_id}.json"
        if "/" not in app_id and guess.is_file():
            entry = read_entry_file(guess)
            if entry.data is not None and entry.data.get("id") == app_id:
                return entry
        for entry in self.list_entries():
            if entry.data is not None and entry.data.get("id") == app_id:
                return entry
        return None


def read_entry_file(path: Path) -> RawEntry:
    """Parse one entry file; unreadable or non-object content becomes a ``problem``."""
    origin = str(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        return RawEntry(origin, None, f"cannot read the file: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return RawEntry(origin, None, f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return RawEntry(origin, None, f"expected one JSON object per file, found {type(data).__name__}")
    return RawEntry(origin, data)
