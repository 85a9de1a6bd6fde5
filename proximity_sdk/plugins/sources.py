"""What a catalog source is: a named provider of raw catalog entries.

A source hands over *raw* entries (parsed JSON objects with where they came from); the catalog
validates them all the same way, so a broken entry from any source is reported identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["CatalogSource", "RawEntry"]


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One catalog entry as a source found it.

    ``origin`` says where it came from (a file path, ``URL#title``) and appears in every message
    about the entry. ``data`` is the parsed object; when the entry could not even be parsed,
    ``data`` is ``None`` and ``problem`` says why.
    """

    origin: str
    data: Mapping[str, Any] | None
    problem: str | None = None


@runtime_checkable
class CatalogSource(Protocol):
    """A provider of catalog entries (a directory, a remote template list, ...).

    ``name`` is short and stable (``builtin``, ``path:/srv/apps``, ``portainer``); it shows in
    stats and shadowing reports. ``list_entries`` may do I/O and is called on every (re)load.
    """

    @property
    def name(self) -> str: ...

    def list_entries(self) -> Iterable[RawEntry]:
        """Every entry this source offers, including unreadable ones (with ``problem`` set)."""
        ...

    def get_entry(self, app_id: str) -> RawEntry | None:
        """The entry with this id, or ``None``."""
        ...
