"""Every hint, as the CLI shows it, names CLI commands, never a bare SDK call (`px.apps.list()`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from proximity_sdk.cli._hints import _TABLE, SDK_CALL, bare_sdk_calls, for_cli
from tests.cli.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]


def _text(node: ast.expr) -> str | None:
    """A hint's text: a literal, or an f-string with its fields as {}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _hints() -> list[tuple[str, str]]:
    """(where, text) of every hint written in the SDK and the agent: ``hint=...`` arguments,
    ``default_hint = ...`` of the error classes, and what ``*hint*`` functions return."""
    found: list[tuple[str, str]] = []
    for package in ("proximity_sdk", "proximity_agent"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "_pb" in path.parts or "standins" in path.parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                values: list[ast.expr] = []
                if isinstance(node, ast.Call):
                    values = [k.value for k in node.keywords if k.arg == "hint"]
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "default_hint" for t in node.targets
                ):
                    values = [node.value]
                elif isinstance(node, ast.FunctionDef) and "hint" in node.name:
                    values = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
                for value in values:
                    text = _text(value)
                    if text:
                        found.append((f"{path.relative_to(ROOT)}:{value.lineno}", text))
    return found


HINTS = _hints()


def test_the_scan_finds_the_hints_that_name_sdk_calls() -> None:
    assert len(HINTS) > 100
    named = [text for _, text in HINTS if SDK_CALL.search(text)]
    assert "List the apps with px.apps.list()" in named
    assert any("catalog.list()" in text for text in named)


@pytest.mark.parametrize(("where", "hint"), [h for h in HINTS if SDK_CALL.search(h[1])], ids=lambda v: str(v)[:60])
def test_every_hint_naming_an_sdk_call_has_a_cli_form(where: str, hint: str) -> None:
    shown = for_cli(hint)
    assert bare_sdk_calls(shown) == [], f"{where}: the CLI would show {shown!r}; teach cli/_hints.py its command"


def test_every_rule_of_the_table_is_used() -> None:
    rewritten = {for_cli(text) for _, text in HINTS}
    for _sdk, cli in _TABLE:
        assert any(cli in text for text in rewritten), f"no hint in the source is rewritten to {cli!r}"


def test_the_rules_give_commands_the_cli_has() -> None:
    assert for_cli("List the apps with px.apps.list()") == "List the apps with `proximity apps list`"
    assert for_cli("Add one with px.hosts.add(...)") == "Add one with `proximity hosts add NAME --url URL ...`"
    assert bare_sdk_calls("Run op.wait() again") == ["op.wait()"]


def test_not_found_hints_on_the_command_line_name_commands(cli: Cli) -> None:
    out = cli.fails(3, "operations", "show", "nope")
    assert out.stderr.splitlines()[-1] == "proximity: hint: List operations with `proximity operations list`"
    out = cli.fails(3, "catalog", "show", "zzzzzzzzzzzz")
    assert out.stderr.splitlines()[-1] == (
        "proximity: hint: List the ids with `proximity catalog list` or look them up with "
        "`proximity catalog search TEXT`"
    )
    out = cli.fails(3, "backups", "list", "nope")
    assert "px." not in out.stderr and "`proximity apps list`" in out.stderr
