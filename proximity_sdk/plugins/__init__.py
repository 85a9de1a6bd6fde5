"""pluggy hookspecs and the typed facade over them.

Plugin authors need `hookimpl`, `CatalogSource` and `RawEntry`; docs/plugins.md lists the hooks.
"""

from __future__ import annotations

from proximity_sdk.plugins.hookspecs import hookimpl
from proximity_sdk.plugins.sources import CatalogSource, RawEntry

__all__ = ["CatalogSource", "RawEntry", "hookimpl"]
