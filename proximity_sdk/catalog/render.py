"""Render a catalog app into the compose project to deploy, with no literal secret in it.

Every secret ends up in the project's ``.env`` and nowhere else; the compose file refers to it as
``${NAME}`` (compose interpolates from ``.env``). Secrets come from three places:

1. the entry's declared ``secrets`` (built-in entries reference them as ``${NAME}``);
2. literal values of secret-named variables (`is_secret_name`) in the services' environments:
   the same literal anywhere in the app becomes ONE generated secret, so a web service and its
   database keep agreeing (gitea ``GITEA__database__PASSWD`` and ``POSTGRES_PASSWORD``);
3. passwords inside URLs (``postgres://user:PASS@db``, ``?p=PASS``) and after secret-named
   command flags (``redis-server --requirepass PASS``), joined to (2) by literal value.

``environment`` overrides from the user are validated; a secret-named or secret-holding variable
takes the user's value into ``.env`` (shared with every service using it), any other is written
into the compose file with ``$`` escaped. ``secrets`` passes values to reuse (redeploy, restore).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proximity_sdk.catalog.secrets import generate_secret, infer_secret_spec, is_secret_name, is_secret_value
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.catalog import ENV_NAME_PATTERN, CatalogApp, SecretSpec

__all__ = ["RenderedProject", "env_file_text", "render_project"]

_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_ANY_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
_URL_PASSWORD = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@/\s]+)(?=@)")
_QUERY_PASSWORD = re.compile(r"(?P<pre>[?&;](?:p|pass|password|pwd)=)(?P<pw>[^&;#\s]+)", re.IGNORECASE)
_FLAG = re.compile(r"(?P<pre>(?<!\S)--?(?P<flag>[A-Za-z][A-Za-z0-9-]*)[ =])(?P<pw>'[^']*'|\"[^\"]*\"|[^\s'\"]+)")
_ENV_UNSAFE = re.compile(r"['\n\r\x00]")


@dataclass(frozen=True, repr=False)
class RenderedProject:
    """What to write into the container: ``compose`` (as ``compose.yaml``) and ``env`` (as ``.env``).

    ``env`` holds every secret of the deployment by name (store it encrypted: `secrets`);
    ``generated`` names those created now rather than given or reused.
    """

    app_id: str
    compose: dict[str, Any]
    # every secret: never in a repr (a traceback, a log line or a notebook cell would print it)
    env: dict[str, str]
    generated: frozenset[str]
    main_service: str
    main_port: int | None

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.env))
        return (
            f"RenderedProject(app_id={self.app_id!r}, services={sorted(self.compose.get('services') or {})!r}, "
            f"env=<{len(self.env)} hidden: {names}>, main_service={self.main_service!r}, "
            f"main_port={self.main_port!r})"
        )

    @property
    def secrets(self) -> dict[str, str]:
        """The values to store encrypted (all of ``.env``)."""
        return dict(self.env)

    def compose_text(self) -> str:
        """The compose file as JSON text (JSON is YAML, and compose reads it as such)."""
        return json.dumps(self.compose, indent=2) + "\n"

    def env_text(self) -> str:
        """The ``.env`` file: single-quoted values, so compose takes them literally."""
        return env_file_text(self.env)


def env_file_text(env: Mapping[str, str]) -> str:
    """A compose ``.env`` file: single-quoted values (quotes and line breaks are refused upstream)."""
    return "".join(f"{name}='{value}'\n" for name, value in env.items())


@dataclass
class _Group:
    spec: SecretSpec
    value: str | None = None


class _Renderer:
    def __init__(self, app: CatalogApp) -> None:
        self.app = app
        self.compose: dict[str, Any] = copy.deepcopy(app.docker_compose)
        self.compose.pop("version", None)  # obsolete; compose v2 warns about it
        self.services: dict[str, dict[str, Any]] = self.compose["services"]
        self.groups: dict[str, _Group] = {spec.name: _Group(spec) for spec in app.secrets}
        self.by_literal: dict[str, str] = {}
        for service in self.services.values():
            service["environment"] = _env_as_dict(service.get("environment"))

    # secret groups --------------------------------------------------------------------------

    def _new_group(self, wanted: str, spec_for: str, literal: str | None) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", wanted) or "SECRET"
        if base[0].isdigit():
            base = "_" + base
        name, n = base, 2
        while name in self.groups:
            name, n = f"{base}_{n}", n + 1
        spec = infer_secret_spec(spec_for, literal or "")
        spec = spec.model_copy(update={"name": name})
        if spec.kind == "sha256" and spec.of is not None and spec.of not in self.groups:
            # the plain password whose digest the app wants: kept in .env so the user can log in
            companion = re.sub(r"[^A-Za-z0-9_]", "_", spec.of)
            self.groups.setdefault(companion, _Group(SecretSpec(name=companion)))
            spec = spec.model_copy(update={"of": companion})
        self.groups[name] = _Group(spec)
        if literal is not None:
            self.by_literal[literal] = name
        return name

    def _group_for_literal(self, literal: str, wanted: str) -> str:
        return self.by_literal.get(literal) or self._new_group(wanted, wanted, literal)

    # passes ---------------------------------------------------------------------------------

    def replace_named_literals(self) -> None:
        for service in self.services.values():
            env = service["environment"]
            for name, value in env.items():
                if is_secret_name(name) and is_secret_value(value):
                    env[name] = "${" + self._group_for_literal(value, name) + "}"

    def replace_embedded(self) -> None:
        for service_name, service in self.services.items():
            env = service["environment"]
            for name, value in env.items():
                if isinstance(value, str) and not _REF.match(value):
                    env[name] = self._sub_urls(value, f"{name}_PASSWORD")
            command = service.get("command")
            wanted = f"{service_name}_PASSWORD".upper()
            if isinstance(command, str):
                service["command"] = self._sub_flags(self._sub_urls(command, wanted), wanted)
            elif isinstance(command, list):
                service["command"] = self._sub_flag_list([str(c) for c in command], wanted)

    def _sub_urls(self, text: str, wanted: str) -> str:
        def repl(match: re.Match[str]) -> str:
            pw = match["pw"]
            if not is_secret_value(pw) or pw.startswith("$"):
                return match[0]
            return match["pre"] + "${" + self._group_for_literal(pw, wanted) + "}"

        return _QUERY_PASSWORD.sub(repl, _URL_PASSWORD.sub(repl, text))

    def _sub_flags(self, text: str, wanted: str) -> str:
        def repl(match: re.Match[str]) -> str:
            pw = match["pw"].strip("'\"")
            if not is_secret_name(match["flag"]) or not is_secret_value(pw) or pw.startswith("$"):
                return match[0]
            return match["pre"] + "${" + self._group_for_literal(pw, wanted) + "}"

        return _FLAG.sub(repl, text)

    def _sub_flag_list(self, args: list[str], wanted: str) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            flag, eq, value = arg.partition("=")
            previous = args[i - 1] if i else ""
            if flag.startswith("-") and eq and is_secret_name(flag.lstrip("-")) and is_secret_value(value):
                arg = f"{flag}=${{{self._group_for_literal(value, wanted)}}}"
            elif (
                previous.startswith("-")
                and "=" not in previous
                and is_secret_name(previous.lstrip("-"))
                and is_secret_value(arg)
                and not arg.startswith("$")
            ):
                arg = "${" + self._group_for_literal(arg, wanted) + "}"
            out.append(self._sub_urls(arg, wanted))
        return out

    # user input -----------------------------------------------------------------------------

    def apply_overrides(self, overrides: Mapping[str, str]) -> None:
        main = self.app.main_service or next(iter(self.services))
        for name, value in overrides.items():
            holders = [s for s in self.services.values() if name in s["environment"]]
            if name in self.groups and not holders:
                self._set_secret(name, name, value)
                continue
            if not holders:
                holders = [self.services[main]]
            for service in holders:
                current = service["environment"].get(name)
                ref = _REF.match(current) if isinstance(current, str) else None
                if ref and ref[1] in self.groups:
                    self._set_secret(ref[1], name, value)
                elif is_secret_name(name) or name in self.groups:
                    if name not in self.groups:
                        self.groups[name] = _Group(SecretSpec(name=name))
                    self._set_secret(name, name, value)
                    service["environment"][name] = "${" + name + "}"
                else:
                    service["environment"][name] = value.replace("$", "$$")

    def _set_secret(self, group: str, given_as: str, value: str) -> None:
        if _ENV_UNSAFE.search(value) or not value:
            raise ValidationError(
                f"environment {given_as}: a secret value must be non-empty, without a single quote (') or line break",
                field=f"environment.{given_as}",
                hint="Choose another value, or leave it out to have one generated",
            )
        self.groups[group].value = value

    # result ---------------------------------------------------------------------------------

    def check_references(self) -> None:
        text = json.dumps(self.services)
        for match in _ANY_REF.finditer(text):
            name, rest = match[1], match[2]
            if not rest and name not in self.groups:
                raise ValidationError(
                    f"app {self.app.id}: the compose file uses ${{{name}}} but no secret {name} is declared",
                    field="secrets",
                    hint=f"Declare {name} in the entry's secrets, or give it a default (${{{name}:-value}})",
                )

    def values(self, reuse: Mapping[str, str]) -> tuple[dict[str, str], set[str]]:
        env: dict[str, str] = {}
        generated: set[str] = set()
        ordered = sorted(self.groups.items(), key=lambda item: item[1].spec.kind == "sha256")
        for name, group in ordered:
            value = group.value if group.value is not None else reuse.get(name)
            if value is None:
                value = generate_secret(group.spec, known=env)
                generated.add(name)
            env[name] = value
        return {name: env[name] for name in self.groups}, generated


def _env_as_dict(env: Any) -> dict[str, Any]:
    """Compose accepts a mapping or a list of ``NAME=value``; work on a mapping."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): v for k, v in env.items()}
    result: dict[str, Any] = {}
    for item in env:
        name, eq, value = str(item).partition("=")
        result[name] = value if eq else None
    return result


def _validate_overrides(environment: Mapping[str, Any] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in (environment or {}).items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValidationError(
                f"environment variable name {name!r} is not valid",
                field="environment",
                hint="Use letters, digits and '_', not starting with a digit",
            )
        if not isinstance(value, str):
            raise ValidationError(
                f"environment {name}: expected a string, got {type(value).__name__}",
                field=f"environment.{name}",
                hint='Pass every value as a string, e.g. "8080" or "true"',
            )
        if "\x00" in value:
            raise ValidationError(f"environment {name}: NUL character", field=f"environment.{name}")
        result[name] = value
    return result


def render_project(
    app: CatalogApp,
    *,
    environment: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RenderedProject:
    """The compose project for one deployment of ``app``; see the module docstring."""
    overrides = _validate_overrides(environment)
    renderer = _Renderer(app)
    renderer.replace_named_literals()
    renderer.replace_embedded()
    renderer.apply_overrides(overrides)
    renderer.check_references()
    env, generated = renderer.values(secrets or {})
    # drop environments that were absent, to keep the output close to the entry
    for service in renderer.services.values():
        if not service["environment"]:
            del service["environment"]
    return RenderedProject(
        app_id=app.id,
        compose=renderer.compose,
        env=env,
        generated=frozenset(generated),
        main_service=app.main_service or next(iter(renderer.services)),
        main_port=app.main_port,
    )
