"""`Listing`: what every ``list()`` of the SDK returns: a plain ``list`` that also renders as a
table in Jupyter (``_repr_html_``)."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Listing"]

T = TypeVar("T")


class Listing(list[T]):
    """A list of SDK models. Behaves exactly like ``list``; only adds an HTML table for notebooks
    (at most 100 rows, then a count of the rest; an empty listing says "no items")."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        from proximity_sdk.models._html import listing_html  # pydantic and friends load only when displayed

        return listing_html(self)
