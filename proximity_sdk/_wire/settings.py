"""``settings.proto``: :class:`Settings` <-> ``Settings`` (answers, both directions), and
UpdateSettings' partial message with its update mask (requests).

In an update, a named ``optional`` field left unset clears the setting; the other settings cannot
be cleared (None means "unchanged" in ``px.settings.update``, as locally), and an unspecified
``ip_mode`` is its default, ``dhcp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from proximity_sdk._pb.proximity.v1 import settings_pb2
from proximity_sdk._wire._base import (
    enum_from_pb,
    enum_to_pb,
    known_enum_from_pb,
    mask_paths_from_pb,
    optional_from_pb,
)
from proximity_sdk.errors import ValidationError
from proximity_sdk.models._requests import check_choice
from proximity_sdk.models.settings import Settings

__all__ = ["settings_from_pb", "settings_to_pb", "settings_update_from_pb", "settings_update_to_pb"]

_FIELDS = settings_pb2.Settings.DESCRIPTOR.fields_by_name
_OPTIONAL = frozenset(name for name, field in _FIELDS.items() if field.has_presence)
_LISTS = frozenset({"ssh_public_keys", "dns_servers"})
_IP_MODES = ("dhcp", "static")


def settings_to_pb(settings: Settings) -> settings_pb2.Settings:
    values = {k: v for k, v in settings.model_dump().items() if k in _FIELDS}
    values["ip_mode"] = enum_to_pb("IP_MODE_", settings_pb2.IpMode, settings.ip_mode)
    return settings_pb2.Settings(**values)


def settings_from_pb(m: settings_pb2.Settings) -> Settings:
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name == "ip_mode":
            values[name] = known_enum_from_pb(
                "IP_MODE_", settings_pb2.IpMode, m.ip_mode, known=_IP_MODES, default="dhcp"
            )
        elif name in _OPTIONAL:
            values[name] = optional_from_pb(m, name)
        elif name in _LISTS:
            values[name] = list(getattr(m, name))
        else:
            values[name] = getattr(m, name)
    return Settings.model_validate(values)


def settings_update_to_pb(fields: Mapping[str, Any]) -> tuple[settings_pb2.Settings, list[str]]:
    """The Settings message and the update mask's paths for ``px.settings.update(**fields)``. A None
    clears an optional setting; for the others None means 'unchanged', as locally."""
    message = settings_pb2.Settings()
    paths: list[str] = []
    for name, value in fields.items():
        if name not in _FIELDS:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(sorted(_FIELDS))}", field=name)
        if value is None and name not in _OPTIONAL:
            continue
        paths.append(name)
        if value is None:
            continue
        try:
            if name == "ip_mode":
                mode = check_choice(value, _IP_MODES, field="ip_mode")
                message.ip_mode = enum_to_pb("IP_MODE_", settings_pb2.IpMode, mode)
            elif name in _LISTS:
                if isinstance(value, str):
                    raise TypeError("a list of text, not one string")
                getattr(message, name).extend([str(v) for v in value])
            else:
                setattr(message, name, value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"setting {name}: {exc}", field=name) from None
    return message, paths


def settings_update_from_pb(message: settings_pb2.Settings, mask: FieldMask) -> dict[str, Any]:
    """Keyword arguments of ``px.settings.update`` for the fields named in the mask."""
    fields: dict[str, Any] = {}
    for path in mask_paths_from_pb(mask, set(_FIELDS) & set(Settings.model_fields), what="settings"):
        if path == "ip_mode":
            fields[path] = enum_from_pb("IP_MODE_", settings_pb2.IpMode, message.ip_mode) or "dhcp"
        elif path in _OPTIONAL:
            fields[path] = optional_from_pb(message, path)
        elif path in _LISTS:
            fields[path] = list(getattr(message, path))
        else:
            fields[path] = getattr(message, path)
    return fields
