"""Apps by id or by hostname: users type names, the SDK takes ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity_sdk.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from proximity_sdk._client import Proximity
    from proximity_sdk.models.app import App

__all__ = ["resolve_app"]


def resolve_app(px: Proximity, ref: str, *, host: str | None = None) -> App:
    """The app whose id is ``ref``, else the one whose hostname is ``ref`` (on ``host`` if given)."""
    if host is None:
        try:
            return px.apps.get(ref)
        except (NotFoundError, ValidationError):
            pass  # not an id: try it as a hostname
    matches = [a for a in px.apps.list(search=ref, host=host) if a.hostname == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        where = f" on host {host!r}" if host else ""
        raise NotFoundError(f"no app {ref!r}{where}", hint="List the apps with `proximity apps list`")
    raise ValidationError(
        f"{len(matches)} apps are named {ref!r} (on different hosts)",
        field="app",
        hint="Give --host, or the app's id (`proximity apps list`)",
    )
