"""`PortainerSource`: a catalog source over one Portainer v2 template list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

from proximity_portainer.config import PortainerConfig
from proximity_portainer.convert import TemplateError, convert_template
from proximity_portainer.fetch import fetch_text
from proximity_sdk.errors import ProximityError
from proximity_sdk.plugins import RawEntry

__all__ = ["PortainerSource"]


class PortainerSource:
    """Entries converted from the templates at ``location`` (a file path or URL)."""

    def __init__(self, location: str, *, config: PortainerConfig) -> None:
        self.location = location
        self.config = config

    @property
    def name(self) -> str:
        return f"portainer:{self.location}"

    def _fetch(self, location: str) -> str:
        # the admin configured this location: it may be a local file
        return fetch_text(
            location,
            cache_dir=self.config.cache_dir,
            max_age=self.config.max_age,
            timeout=self.config.timeout,
            allow_local=True,
            allow_private=self.config.allow_private,
        )

    def list_entries(self) -> Iterator[RawEntry]:
        try:
            document = json.loads(self._fetch(self.location))
        except (OSError, ProximityError, ValueError) as exc:
            yield RawEntry(self.location, None, f"cannot read the template list: {exc}")
            return
        templates = document.get("templates") if isinstance(document, dict) else None
        if str(document.get("version") if isinstance(document, dict) else "") != "2" or not isinstance(templates, list):
            yield RawEntry(self.location, None, 'expected Portainer v2 templates: {"version": "2", "templates": [...]}')
            return
        # a template's stack URL is the template author's choice: http(s) only, public unless allowed
        fetch = partial(
            fetch_text,
            cache_dir=self.config.cache_dir,
            max_age=self.config.max_age,
            timeout=self.config.timeout,
            allow_local=False,
            allow_private=self.config.allow_private,
        )
        for n, template in enumerate(templates):
            title = template.get("title") if isinstance(template, dict) else None
            origin = f"{self.location}#{n}" + (f" ({title})" if title else "")
            if not isinstance(template, dict):
                yield RawEntry(origin, None, "a template must be a JSON object")
                continue
            try:
                yield RawEntry(origin, convert_template(template, id_prefix=self.config.id_prefix, fetch=fetch))
            except (TemplateError, OSError, ProximityError, UnicodeDecodeError) as exc:
                yield RawEntry(origin, None, str(exc))

    def get_entry(self, app_id: str) -> RawEntry | None:
        for entry in self.list_entries():
            if entry.data is not None and entry.data.get("id") == app_id:
                return entry
        return None
