"""Every module's documentation (as `ansible-doc` renders it, fragments merged) matches its argument
spec: the same options, types, defaults, choices, aliases and suboptions, and secrets are no_log."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.conftest import COLLECTIONS, ansible_env

MODULES = ("app", "app_info", "backup", "catalog_info")
SECRETS = {"secret_key", "token", "database_url"}


def _spec(name: str) -> dict[str, Any]:
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    module = importlib.import_module(f"ansible_collections.proximity.core.plugins.modules.{name}")
    return module.argument_spec()  # type: ignore[no-any-return]


def _compare(documented: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    problems = []
    if set(documented) != set(spec):
        problems.append(f"{where}: documented {sorted(documented)} but the spec has {sorted(spec)}")
    for option in set(documented) & set(spec):
        doc, arg = documented[option], spec[option]
        for key, default in (
            ("type", "str"),
            ("default", None),
            ("choices", None),
            ("elements", None),
            ("aliases", None),
            ("required", False),
        ):
            if doc.get(key, default) != arg.get(key, default):
                problems.append(f"{where}.{option}: {key} documented {doc.get(key)!r}, spec {arg.get(key)!r}")
        if "options" in arg or "suboptions" in doc:
            problems += _compare(doc.get("suboptions", {}), arg.get("options", {}), f"{where}.{option}")
    return problems


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_the_argument_spec(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-doc")), "--json", f"proximity.core.{name}"],
        env={**ansible_env(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    doc = json.loads(shown.stdout)[f"proximity.core.{name}"]
    spec = _spec(name)
    assert _compare(doc["doc"]["options"], spec, name) == []
    for secret in SECRETS:
        assert spec[secret].get("no_log") is True
    # the examples and return values are YAML that says something
    assert yaml.safe_load(doc["examples"])
    assert doc["return"]
