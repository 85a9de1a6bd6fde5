"""Portainer v2 templates -> Proximity catalog entries (plain dicts, validated later by the catalog)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from proximity_sdk.catalog.secrets import is_secret_name

__all__ = ["TemplateError", "convert_template", "slugify", "stack_url"]

_SLUG = re.compile(r"[^a-z0-9._-]+")


class TemplateError(ValueError):
    """A template that cannot become a catalog entry; the message says why."""


def slugify(text: str) -> str:
    slug = _SLUG.sub("-", text.strip().lower()).strip("-._")
    return slug[:50]


def _category(template: Mapping[str, Any]) -> str:
    categories = template.get("categories") or []
    first = next((str(c).strip() for c in categories if str(c).strip()), "")
    return (first[:1].upper() + first[1:]) if first else "Portainer"


def _env_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in template.get("env") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise TemplateError("every `env` item needs a `name`")
        value = item.get("default")
        if value is None:
            chosen = [s for s in item.get("select") or [] if isinstance(s, Mapping) and s.get("default")]
            value = chosen[0].get("value") if chosen else ""
        env[item["name"]] = str(value)
    return env


def _port(spec: str) -> tuple[str, int]:
    """``"8080:80/tcp"`` -> (compose spec, host port); ``"443/tcp"`` publishes on the same port."""
    text = str(spec).strip()
    mapping, _, proto = text.partition("/")
    parts = mapping.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 2:
        raise TemplateError(f"port {spec!r} is not HOST:CONTAINER[/proto] or CONTAINER[/proto]")
    host, container = (parts[0], parts[-1]) if len(parts) == 2 else (parts[0], parts[0])
    compose = f"{host}:{container}" + (f"/{proto}" if proto else "")
    return compose, int(host)


def _base(template: Mapping[str, Any], app_id: str) -> dict[str, Any]:
    title = str(template.get("title") or "").strip()
    if not title:
        raise TemplateError("the template has no title")
    entry: dict[str, Any] = {
        "id": app_id,
        "name": title,
        "description": str(template.get("description") or title),
        "category": _category(template),
        "icon": template.get("logo"),
        "tags": [str(c).lower() for c in template.get("categories") or []] + ["portainer"],
    }
    if template.get("maintainer"):
        entry["author"] = str(template["maintainer"])
    return entry


def _container(template: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    image = template.get("image")
    if not isinstance(image, str) or not image.strip():
        raise TemplateError("a container template (type 1) needs an `image`")
    service_name = slugify(str(template.get("name") or entry["id"])) or "app"
    service: dict[str, Any] = {"image": image, "restart": template.get("restart_policy") or "unless-stopped"}
    ports = [_port(p) for p in template.get("ports") or []]
    if ports:
        service["ports"] = [spec for spec, _ in ports]
    env = _env_defaults(template)
    if env:
        service["environment"] = env
    named: dict[str, dict[str, Any]] = {}
    volumes: list[str] = []
    for n, volume in enumerate(template.get("volumes") or [], start=1):
        if not isinstance(volume, Mapping) or not volume.get("container"):
            raise TemplateError("every `volumes` item needs `container`")
        source = volume.get("bind") or f"{service_name}_data{n}"
        if not volume.get("bind"):
            named[source] = {}
        volumes.append(f"{source}:{volume['container']}" + (":ro" if volume.get("readonly") else ""))
    if volumes:
        service["volumes"] = volumes
    for key in ("command", "hostname", "privileged", "interactive"):
        if template.get(key):
            service["stdin_open" if key == "interactive" else key] = template[key]
    if template.get("network") == "host":
        service["network_mode"] = "host"
    compose: dict[str, Any] = {"services": {service_name: service}}
    if named:
        compose["volumes"] = named
    tag = image.rsplit("/", 1)[-1].partition(":")[2] or "latest"
    entry.update(version=tag, docker_compose=compose, main_service=service_name, ports=[p for _, p in ports])
    return entry


def stack_url(repository: Mapping[str, Any]) -> str:
    """Where a type 3 template's compose file lives."""
    url = str(repository.get("url") or "").rstrip("/")
    stackfile = str(repository.get("stackfile") or "").lstrip("/")
    if not url or not stackfile:
        raise TemplateError("a stack template (type 3) needs repository.url and repository.stackfile")
    github = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    if github:
        return f"https://raw.githubusercontent.com/{github[1]}/{github[2]}/HEAD/{stackfile}"
    return f"{url}/{stackfile}"


def _stack(template: Mapping[str, Any], entry: dict[str, Any], fetch: Callable[[str], str]) -> dict[str, Any]:
    text = fetch(stack_url(template.get("repository") or {}))
    env = _env_defaults(template)
    secrets = sorted(name for name in env if is_secret_name(name))
    # like Portainer: the template's env fills the stack's ${VAR}; secret ones stay references
    for name, value in env.items():
        if name not in secrets:
            pattern = r"\$\{" + re.escape(name) + r"(?:[:-][^}]*)?\}"
            text = re.sub(pattern, value.replace("\\", "\\\\"), text)
    try:
        compose = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # the position only: the parser's message quotes the text, which must not reach a listing
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise TemplateError(f"the stack file is not valid YAML{where}") from None
    if not isinstance(compose, dict):
        raise TemplateError("the stack file is not a compose mapping")
    entry.update(version="stack", docker_compose=compose, secrets=secrets)
    return entry


def convert_template(template: Mapping[str, Any], *, id_prefix: str, fetch: Callable[[str], str]) -> dict[str, Any]:
    """One template as a catalog entry dict. Raises `TemplateError` when it cannot be converted."""
    kind = template.get("type")
    name = slugify(str(template.get("name") or template.get("title") or ""))
    if not name:
        raise TemplateError("the template has neither name nor title")
    entry = _base(template, f"{id_prefix}{name}"[:63])
    if kind == 1:
        return _container(template, entry)
    if kind == 3:
        return _stack(template, entry, fetch)
    if kind == 2:
        raise TemplateError("swarm stack templates (type 2) are not supported: Proximity runs compose in LXC")
    raise TemplateError(f"unknown template type {kind!r} (expected 1 or 3)")
