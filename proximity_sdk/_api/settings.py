"""`SettingsAPI`: ``px.settings``, the defaults every deploy uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from proximity_sdk.models.settings import Settings

__all__ = ["SettingsAPI"]


class SettingsAPI(Protocol):
    """``px.settings``: the defaults every deploy uses (resources, network, capacity, timing).
    Through an agent: admin only."""

    def get(self) -> Settings:
        """The settings as they are now."""
        ...

    def update(self, **fields: Any) -> Settings:
        """Change some settings; the merged result is validated as a whole before it is saved."""
        ...

    def rotate_secret_key(self, new_key: str | bytes | None = None) -> str:
        """Re-encrypt every stored secret with a new key (generated when None and a key file is in use);
        returns the new key. Interrupted at any point, nothing is lost. Not offered through an agent
        (``PermissionDeniedError``): the key belongs to the agent's machine; run it there with
        ``Proximity.local()`` over the agent's data, the agent stopped."""
        ...
