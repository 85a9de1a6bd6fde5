"""The plugin registered under the ``proximity`` entry-point group."""

from __future__ import annotations

from proximity_portainer.config import PortainerConfig
from proximity_sdk.plugins import CatalogSource, hookimpl

__all__ = ["proximity_catalog_sources"]


@hookimpl
def proximity_catalog_sources() -> list[CatalogSource]:
    """One source per location in PROXIMITY_PORTAINER_TEMPLATES (none when it is unset)."""
    config = PortainerConfig.from_env()
    if not config.locations:
        return []
    # HTTP and YAML are only imported when the plugin is configured: loading plugins stays cheap
    from proximity_portainer.source import PortainerSource

    return [PortainerSource(location, config=config) for location in config.locations]
