"""Check requests against the official PVE API schemas (9.1 and 8.4).

Every request our client sent to the fake during a test is checked here: the path exists
(with ``{node}``/``{vmid}``/... placeholders), the method exists, every parameter is known
(``net0`` counts as ``net[n]``), required parameters are present, and values pass the basic
type/enum/pattern/range/format checks PVE's ``JSONSchema.pm`` makes.

Where the schemas come from: ``<repo>/../shared/pve-api`` (see its README) holds both, 9.1 and 8.4.
A clone without ``shared/`` still checks every request against PVE 9, with the schema ``fakepve``
ships (a PVE 9.1.x ``apidoc.js``); the 8.4 checks, which only ``shared/`` can give, are then left
out and the session header says so, unless ``CI`` is set: CI must have ``shared/`` and fails
without it. ``PROXIMITY_SHARED_DIR`` points at another ``shared/`` (or at a missing one, to try
a clone-alone run).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ApiSchema",
    "Problem",
    "RecordedRequest",
    "check_requests",
    "require_shared",
    "schema_dir",
    "schema_source",
    "schemas",
    "shared_dir",
]

API_PREFIX = "/api2/json"
VERSIONS = {"9.1": "apidata.json", "8.4": "apidata-pve8.json"}

# Format regexes from pve-common JSONSchema.pm (the ones our requests meet).
FORMATS: dict[str, re.Pattern[str]] = {
    "pve-node": re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$"),
    "pve-vmid": re.compile(r"^[1-9][0-9]{2,8}$"),
    "pve-storage-id": re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE),
    "pve-configid": re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE),
    "dns-name": re.compile(
        r"^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
    ),
    "pve-tag": re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE),
    "pve-userid": re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$"),
    "mac-addr": re.compile(r"^[a-f0-9]{2}(:[a-f0-9]{2}){5}$", re.IGNORECASE),
}
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
_BOOLEAN = ("0", "1", "true", "false", "yes", "no", "on", "off")
# Placeholders whose values may contain '/'.
SPANNING = frozenset({"volume"})
_INDEXED = re.compile(r"^([a-z][a-z_-]*?)(\d+)$")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the harness recorded it: the decoded path, query and body."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str = ""

    def params(self) -> dict[str, Any]:
        pairs = urllib.parse.parse_qsl(self.query, keep_blank_values=True)
        if self.body:
            if self.content_type == "application/json":
                data = json.loads(self.body)
                if isinstance(data, dict):
                    return {**_collect(pairs), **data}
            elif self.content_type != "multipart/form-data":
                pairs += urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True)
        return _collect(pairs)


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prior = out[key]
            out[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Problem:
    version: str
    method: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[PVE {self.version}] {self.method} {self.path}: {self.message}"


class ApiSchema:
    """One PVE API schema (apidata.json shape), with path matching and parameter checks."""

    def __init__(self, version: str, tree: list[dict[str, Any]]) -> None:
        self.version = version
        self.paths: dict[str, dict[str, Any]] = {}
        stack = list(tree)
        while stack:
            node = stack.pop()
            self.paths[node["path"]] = node.get("info") or {}
            stack.extend(node.get("children") or [])
        self._trie: dict[str, Any] = {}
        for template in self.paths:
            here = self._trie
            for seg in template.strip("/").split("/"):
                if seg.startswith("{") and seg.endswith("}"):
                    here = here.setdefault("{}", (seg[1:-1], {}))[1]
                else:
                    here = here.setdefault("lit", {}).setdefault(seg, {})
            here["$"] = template

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The template and placeholder values of a (decoded) path below /api2/json."""
        segs = path.strip("/").split("/")

        def walk(node: dict[str, Any], i: int, found: dict[str, str]) -> tuple[str, dict[str, str]] | None:
            if i == len(segs):
                return (node["$"], found) if "$" in node else None
            literal = node.get("lit", {}).get(segs[i])
            if literal is not None:
                result = walk(literal, i + 1, found)
                if result:
                    return result
            if "{}" in node and segs[i]:
                name, child = node["{}"]
                # A volume id holds '/' once decoded (local:vztmpl/x.tar.zst): let it span segments.
                last = len(segs) if name in SPANNING else i + 1
                for j in range(i + 1, last + 1):
                    result = walk(child, j, {**found, name: "/".join(segs[i:j])})
                    if result:
                        return result
            return None

        return walk(self._trie, 0, {})

    def check(self, method: str, path: str, params: Mapping[str, Any]) -> list[str]:
        """What is wrong with this request (empty when it is valid)."""
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        matched = self.match(path)
        if matched is None:
            return [f"no such path {path!r} in the schema"]
        template, placeholders = matched
        info = self.paths[template].get(method)
        if info is None:
            return [f"method {method} is not defined for {template}"]
        spec = info.get("parameters") or {}
        props: dict[str, Any] = spec.get("properties") or {}
        values = {**dict(params), **placeholders}
        problems: list[str] = []
        for name, value in sorted(values.items()):
            schema = _lookup(props, name)
            if schema is None:
                if not spec.get("additionalProperties"):
                    problems.append(f"unknown parameter {name!r}")
                continue
            for item in value if isinstance(value, list) and schema.get("type") != "array" else [value]:
                if item == REDACTED:
                    continue  # fakepve records secrets (password, ...) as *** only: nothing left to check
                why = check_value(schema, item)
                if why:
                    problems.append(f"parameter {name!r}={item!r}: {why}")
        for name, schema in props.items():
            if not schema.get("optional") and "[n]" not in name and name not in values:
                problems.append(f"required parameter {name!r} is missing")
        return problems


# What fakepve records in place of a secret form value (its SECRET_KEYS: password, ...).
REDACTED = "***"


def _lookup(props: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    if name in props:
        return dict(props[name])
    indexed = _INDEXED.match(name)
    if indexed and f"{indexed.group(1)}[n]" in props:
        return dict(props[f"{indexed.group(1)}[n]"])
    return None


def _pattern(pattern: str) -> re.Pattern[str] | None:
    text = pattern.replace("(?^i:", "(?i:").replace("(?^:", "(?:")
    try:
        return re.compile(f"^(?:{text})$", re.S)
    except re.error:
        return None


def check_value(schema: Mapping[str, Any], value: Any) -> str | None:
    """The first reason PVE would refuse ``value`` for ``schema``, or None."""
    kind = schema.get("type", "string")
    if kind == "array":
        for item in value if isinstance(value, list) else [value]:
            why = check_value(schema.get("items") or {}, item)
            if why:
                return why
        return None
    text = ("1" if value else "0") if isinstance(value, bool) else str(value)
    if kind == "integer" and not _INTEGER.match(text):
        return "type check ('integer') failed"
    if kind == "number" and not _NUMBER.match(text):
        return "type check ('number') failed"
    if kind == "boolean" and text.lower() not in _BOOLEAN:
        return "type check ('boolean') failed"
    if kind in ("integer", "number"):
        number = float(text)
        if "minimum" in schema and number < float(schema["minimum"]):
            return f"value must have a minimum value of {schema['minimum']}"
        if "maximum" in schema and number > float(schema["maximum"]):
            return f"value must have a maximum value of {schema['maximum']}"
    enum = schema.get("enum")
    if enum is not None and text not in [str(e) for e in enum]:
        return f"value {text!r} is not one of {enum}"
    if "maxLength" in schema and len(text) > int(schema["maxLength"]):
        return f"value may only be {schema['maxLength']} characters long"
    if "minLength" in schema and len(text) < int(schema["minLength"]):
        return f"value must be at least {schema['minLength']} characters long"
    if schema.get("pattern") and kind == "string":
        rx = _pattern(str(schema["pattern"]))
        if rx is not None and not rx.match(text):
            return "value does not match the regex pattern"
    fmt = schema.get("format")
    if isinstance(fmt, dict):
        return _check_property_string(fmt, text)
    if isinstance(fmt, str):
        return _check_format(fmt, text)
    return None


def _check_format(fmt: str, text: str) -> str | None:
    base, items = fmt, [text]
    if fmt.endswith("-opt"):
        if text == "":
            return None
        base = fmt[: -len("-opt")]
    if base.endswith("-list"):
        base = base[: -len("-list")]
        items = [i for i in (text.split("\0") if "\0" in text else re.split(r"[,;\s]+", text)) if i]
    rx = FORMATS.get(base)
    if rx is None:
        return None  # a format registered elsewhere (pve-storage, pve-container): not checked here
    for item in items:
        if not rx.match(item):
            return f"invalid format - value does not look like a valid {base}"
    return None


def _check_property_string(fmt: Mapping[str, Any], text: str) -> str | None:
    default_key = next((k for k, v in fmt.items() if isinstance(v, Mapping) and v.get("default_key")), None)
    seen: set[str] = set()
    for part in (p for p in text.split(",") if p):
        key, eq, value = part.partition("=")
        if not eq:
            if default_key is None or default_key in seen:
                return f"invalid format - value without key in {part!r}"
            key, value = default_key, part
        sub = fmt.get(key)
        if not isinstance(sub, Mapping):
            alias = next((k for k, v in fmt.items() if isinstance(v, Mapping) and v.get("alias") == key), None)
            if alias is None:
                return f"invalid format - property {key!r} is not defined"
            sub = fmt[alias]
        if key in seen:
            return f"invalid format - duplicate key {key!r}"
        seen.add(key)
        why = check_value(sub, value)
        if why:
            return f"invalid format - {key}: {why}"
    for key, sub in fmt.items():
        if isinstance(sub, Mapping) and not sub.get("optional") and key not in seen and not sub.get("alias"):
            return f"invalid format - property {key!r} is missing"
    return None


def shared_dir(repo_root: Path | None = None) -> Path:
    """The reference data beside the repository (``<repo>/../shared``), or ``$PROXIMITY_SHARED_DIR``."""
    override = os.environ.get("PROXIMITY_SHARED_DIR")
    if override and repo_root is None:
        return Path(override)
    root = repo_root or Path(__file__).resolve().parents[2]
    return root.parent / "shared"


def schema_dir(repo_root: Path | None = None) -> Path:
    """``<repo>/../shared/pve-api``: beside the repository, wherever it is cloned."""
    found = shared_dir(repo_root) / "pve-api"
    if not (found / VERSIONS["9.1"]).is_file():
        raise FileNotFoundError(
            f"the PVE API schemas are not at {found}; put the shared/ directory beside the repository"
        )
    return found


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require_shared(what: str) -> Path:
    """``shared/`` for a test that needs ``what`` from it: skipped without it, failed without it on CI."""
    import pytest  # only tests call this; the checker itself stays importable without pytest

    here = shared_dir()
    if not here.is_dir():
        message = f"needs {what} from {here} (the reference data beside the repository)"
        if in_ci():
            pytest.fail(f"{message}; CI is set, so it is required", pytrace=False)
        pytest.skip(message)
    return here


def _fakepve_schema() -> ApiSchema:
    import fakepve  # the test extra installs it

    data = Path(fakepve.__file__).parent / "data" / "pve-api.json.gz"
    with gzip.open(data, "rt") as fh:
        paths: dict[str, dict[str, Any]] = json.load(fh)["paths"]
    return ApiSchema("9.1", [{"path": path, "info": info} for path, info in paths.items()])


def schema_source() -> str:
    """Where the schemas of this run come from, in words (for the session header)."""
    try:
        return f"PVE 9.1 and 8.4 from {schema_dir()}"
    except FileNotFoundError:
        return (
            f"PVE 9 from fakepve's bundled schema; {shared_dir() / 'pve-api'} is missing, so requests are "
            "not checked against PVE 8.4 and the tests needing shared/ are skipped (CI=1 makes them fail)"
        )


@functools.cache
def schemas() -> dict[str, ApiSchema]:
    """The schemas there are, loaded once per process: {'9.1': ..., '8.4': ...} with ``shared/``,
    {'9.1': fakepve's} without (and a failure on CI)."""
    try:
        here = schema_dir()
    except FileNotFoundError:
        if in_ci():
            raise
        return {"9.1": _fakepve_schema()}
    return {v: ApiSchema(v, json.loads((here / name).read_text())) for v, name in VERSIONS.items()}


def check_requests(requests: Iterable[RecordedRequest], *, versions: Iterable[str] = ("9.1", "8.4")) -> list[Problem]:
    """Every problem of every request against each named schema version there is (8.4 needs
    ``shared/``: see the module's docstring)."""
    loaded = schemas()
    present = [v for v in versions if v in loaded]
    problems: list[Problem] = []
    for req in requests:
        params = req.params()
        for version in present:
            for message in loaded[version].check(req.method, req.path, params):
                problems.append(Problem(version, req.method, req.path, message))
    return problems
