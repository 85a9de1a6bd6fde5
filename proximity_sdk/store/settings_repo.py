"""The settings record: read it, change part of it (the merged result is validated as a whole)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from proximity_sdk.models.settings import Settings, SettingsUpdate
from proximity_sdk.store._common import StoreContext, checked, validate_request
from proximity_sdk.store._rotate import rotate_secret_key
from proximity_sdk.store.tables import SettingsRow

__all__ = ["SettingsRepository"]


class SettingsRepository:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def get(self) -> Settings:
        with self._ctx.session() as s:
            data = s.execute(select(SettingsRow.data).where(SettingsRow.id == 1)).scalar_one()
        return Settings.model_validate(data)

    def update(self, request: SettingsUpdate | None = None, /, **fields: Any) -> Settings:
        """Change the given fields; e.g. ``update(memory_overcommit=1.5)`` or ``update(SettingsUpdate(...))``.

        Only fields given change (a nullable field given as None is cleared). Raises
        ``ValidationError`` naming the field when the result would be inconsistent.
        """
        changes = validate_request(SettingsUpdate, request, fields, what="settings update")
        delta = changes.model_dump(mode="json", exclude_unset=True)
        # immediate: on SQLite, take the write lock before reading so concurrent updates serialize
        with self._ctx.session(immediate=True) as s:
            row = s.execute(select(SettingsRow).where(SettingsRow.id == 1).with_for_update()).scalar_one()
            merged = {**row.data, **delta}
            settings = checked(lambda: Settings.model_validate(merged), what="settings")
            # keep only what differs from the defaults, so a future default change reaches
            # everyone who never chose otherwise
            row.data = settings.model_dump(mode="json", exclude_defaults=True)
        return settings

    def rotate_secret_key(self, new_key: str | bytes | None = None) -> str:
        """Re-encrypt every stored secret with a new key; returns the new key.

        With a key file, the key may be generated here (None) and the file is rewritten safely.
        With a key from ``secret_key=`` or ``$PROXIMITY_SECRET_KEY``, pass ``new_key`` (saved by
        you beforehand) and switch your configuration to it afterwards. An interruption at any
        point loses nothing (see ``proximity_sdk.store._rotate``).
        """
        return rotate_secret_key(self._ctx, new_key)
