"""``px.settings``: the defaults every deploy uses (resources, network, capacity, timing)."""

from __future__ import annotations

from typing import Any

from proximity_sdk._api.settings import SettingsAPI
from proximity_sdk.models.settings import Settings
from proximity_sdk.store import Store

__all__ = ["SettingsResource"]


class SettingsResource(SettingsAPI):
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self) -> Settings:
        return self._store.settings.get()

    def update(self, **fields: Any) -> Settings:
        return self._store.settings.update(**fields)

    def rotate_secret_key(self, new_key: str | bytes | None = None) -> str:
        return self._store.rotate_secret_key(new_key)
