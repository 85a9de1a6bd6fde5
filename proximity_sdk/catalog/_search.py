"""An in-memory search index built once per catalog load (lower-cased fields, ranked scoring)."""

from __future__ import annotations

from collections.abc import Sequence

from proximity_sdk.models.catalog import CatalogApp

__all__ = ["SearchIndex"]


class _Row:
    __slots__ = ("app", "blob", "category", "description", "id", "name", "tags")

    def __init__(self, app: CatalogApp) -> None:
        self.app = app
        self.id = app.id.lower()
        self.name = app.name.lower()
        self.tags = tuple(tag.lower() for tag in app.tags)
        self.category = app.category.lower()
        self.description = app.description.lower()
        # every searched field in one string: most terms miss most apps, and one `in` says so
        self.blob = "\x00".join((self.id, self.name, *self.tags, self.category, self.description))


def _score(row: _Row, term: str) -> int:
    """How well one query term matches one app; 0 means it does not match at all."""
    if term not in row.blob:
        return 0
    if term == row.id or term == row.name:
        return 100
    if row.id.startswith(term) or row.name.startswith(term):
        return 80
    if term in row.name or term in row.id:
        return 60
    if term in row.tags:
        return 50
    if any(term in tag for tag in row.tags):
        return 35
    if term == row.category:
        return 30
    if term in row.description:
        return 15
    if term in row.category:
        return 10
    return 0


class SearchIndex:
    """Ranks apps for a query: every whitespace-separated term must match (AND).

    Per term, name/id matches rank above tags, tags above category, category above description;
    ties sort by name. An empty query returns every app by name.
    """

    __slots__ = ("_by_name", "_rows")

    def __init__(self, apps_by_name: Sequence[CatalogApp]) -> None:
        self._by_name = list(apps_by_name)
        self._rows = [_Row(app) for app in apps_by_name]

    def search(self, query: str) -> list[CatalogApp]:
        terms = query.lower().split()
        if not terms:
            return list(self._by_name)
        hits: list[tuple[int, int, CatalogApp]] = []
        # rows are already in name order, so the position is the tie-breaker
        for position, row in enumerate(self._rows):
            total = 0
            for term in terms:
                score = _score(row, term)
                if not score:
                    break
                total += score
            else:
                hits.append((-total, position, row.app))
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        return [hit[2] for hit in hits]
