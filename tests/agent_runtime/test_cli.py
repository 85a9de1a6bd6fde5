"""``proximity-agent migrate | token | plugins | serve``, run as a real command (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect

from proximity_sdk.store import Store
from proximity_sdk.store._migrate import head_revision
from proximity_sdk.store.users_repo import TOKEN_PREFIX

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def agent(database_url: str, tmp_path: Path) -> Run:
    """``agent("token", "list")``: runs proximity-agent on the test's database."""
    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXIMITY_")}
    env |= {
        "PROXIMITY_AGENT_DATABASE_URL": database_url,
        "PROXIMITY_AGENT_DATA_DIR": str(tmp_path / "data"),
        "PROXIMITY_AGENT_SECRET_KEY": key,
        "PROXIMITY_AGENT_ENTRY_POINTS": "false",
    }

    def run(*args: str, expect: int = 0, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "proximity_agent.cli", *args],
            cwd=ROOT,
            env=env | (extra_env or {}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return done

    run.key = key  # type: ignore[attr-defined]
    return run


def test_migrate_creates_the_schema_on_an_empty_database(agent: Run, database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []
        first = agent("migrate")
        assert f"to revision {head_revision()}" in first.stdout
        tables = set(inspect(engine).get_table_names())
        assert {"operations", "apps", "users", "api_tokens", "alembic_version"} <= tables
        again = agent("migrate")
        assert f"already at revision {head_revision()}" in again.stdout
    finally:
        engine.dispose()


def test_token_create_prints_a_token_once_and_it_authenticates(agent: Run, database_url: str, tmp_path: Path) -> None:
    created = agent("token", "create", "--admin", "--name", "bootstrap")
    token = created.stdout.strip()
    assert token.startswith(TOKEN_PREFIX) and "\n" not in token
    assert "shown once" in created.stderr and token not in created.stderr
    with Store.open(database_url, data_dir=tmp_path / "data", secret_key=agent.key) as store:  # type: ignore[attr-defined]
        user = store.users.authenticate(token)
        assert user is not None and user.name == "admin" and user.role.value == "admin"
        [record] = store.users.tokens("admin")
        assert record.name == "bootstrap"

    member = agent("token", "create", "--user", "alice").stdout.strip()
    listing = agent("token", "list").stdout
    assert token not in listing and member not in listing and TOKEN_PREFIX not in listing
    lines = listing.splitlines()
    assert lines[0].split() == ["ID", "USER", "ROLE", "NAME", "CREATED", "EXPIRES", "LAST", "USED"]
    assert any(line.split()[1:4] == ["admin", "admin", "bootstrap"] for line in lines[1:])
    assert any(line.split()[1:4] == ["alice", "member", "cli"] for line in lines[1:])
    assert record.id in listing

    agent("token", "revoke", record.id)
    with Store.open(database_url, data_dir=tmp_path / "data", secret_key=agent.key) as store:  # type: ignore[attr-defined]
        assert store.users.authenticate(token) is None
        assert store.users.authenticate(member) is not None


def test_token_commands_refuse_what_makes_no_sense(agent: Run) -> None:
    agent("token", "create", "--user", "bob")
    promoted = agent("token", "create", "--admin", "--user", "bob", expect=2)
    assert "is a member, not an admin" in promoted.stderr
    nobody = agent("token", "create", expect=2)
    assert "--user NAME" in nobody.stderr
    unknown = agent("token", "revoke", "no-such-token", expect=1)
    assert "no API token 'no-such-token'" in unknown.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_plugins_lists_the_loaded_plugins(agent: Run, tmp_path: Path) -> None:
    # a plugin distribution installed on the path, found through its entry point
    site = tmp_path / "site"
    (site / "px_demo_plugin").mkdir(parents=True)
    (site / "px_demo_plugin" / "__init__.py").write_text(
        "from proximity_sdk.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef proximity_operation_after(operation, app):\n    pass\n"
    )
    dist = site / "px_demo_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: px-demo-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[proximity]\ndemo = px_demo_plugin\n")
    env = {"PYTHONPATH": str(site), "PROXIMITY_AGENT_ENTRY_POINTS": "true"}
    listing = agent("plugins", extra_env=env).stdout
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert "demo" in rows, listing
    assert "px-demo-plugin 1.2.3" in rows["demo"] and "operation_after" in rows["demo"]
    assert any("built-in" in row for row in rows.values())  # the built-in catalog source, at least

    without = agent("plugins").stdout  # entry points off: only the built-ins
    assert "demo" not in without


def test_a_bad_setting_fails_with_the_field_named(agent: Run) -> None:
    failed = agent("migrate", expect=2, extra_env={"PROXIMITY_AGENT_NODE_SLOTS": "0"})
    assert "node_slots (from $PROXIMITY_AGENT_NODE_SLOTS)" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_settings_file_and_version(agent: Run, tmp_path: Path) -> None:
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"node_slots": 999}))
    failed = agent("--config", str(config), "migrate", expect=2)
    assert f"node_slots (from file {config})" in failed.stderr
    assert agent("--version").stdout.startswith("proximity-agent ")
