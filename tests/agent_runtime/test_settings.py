"""Agent settings: a TOML or JSON file, PROXIMITY_AGENT_* variables on top, errors that name the field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from proximity_agent.settings import AgentSettings
from proximity_sdk.errors import ValidationError

TOML = """
database_url = "postgresql+psycopg://px:hunter2@db.example/proximity"
data_dir = "/var/lib/proximity"
port = 50061
metrics_port = 9500
reconcile_interval_seconds = 30
catalog_paths = ["/srv/apps", "/srv/more"]
log_format = "text"
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_toml_file_is_read(tmp_path: Path) -> None:
    settings = AgentSettings.load(_write(tmp_path, "agent.toml", TOML), env={})
    assert settings.database_url == "postgresql+psycopg://px:hunter2@db.example/proximity"
    assert settings.data_dir == Path("/var/lib/proximity")
    assert (settings.port, settings.metrics_port) == (50061, 9500)
    assert settings.reconcile_interval_seconds == 30.0
    assert settings.catalog_paths == [Path("/srv/apps"), Path("/srv/more")]
    assert settings.log_format == "text"
    assert settings.janitor_interval_seconds == 300.0  # not in the file: the default


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "agent.json", json.dumps({"port": 0, "metrics_port": None, "lease_seconds": 2}))
    settings = AgentSettings.load(path, env={})
    assert (settings.port, settings.metrics_port, settings.lease_seconds) == (0, None, 2.0)


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "agent.toml", TOML)
    env = {
        "PROXIMITY_AGENT_PORT": "50099",
        "PROXIMITY_AGENT_RECONCILE_INTERVAL_SECONDS": "5.5",
        "PROXIMITY_AGENT_METRICS_PORT": "null",
        "PROXIMITY_AGENT_ENTRY_POINTS": "false",
        "PROXIMITY_AGENT_CATALOG_PATHS": os.pathsep.join(["/a", "/b", "/c"]),
        "PROXIMITY_AGENT_LOG_LEVEL": "",
        "OTHER_VARIABLE": "ignored",
    }
    settings = AgentSettings.load(path, env=env)
    assert settings.port == 50099
    assert settings.reconcile_interval_seconds == 5.5
    assert settings.metrics_port is None
    assert settings.entry_points is False
    assert settings.catalog_paths == [Path("/a"), Path("/b"), Path("/c")]
    assert settings.log_level == "INFO"  # empty: unset
    assert settings.data_dir == Path("/var/lib/proximity")  # from the file


def test_the_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "agent.json", json.dumps({"port": 50123}))
    assert AgentSettings.load(env={"PROXIMITY_AGENT_CONFIG": str(path)}).port == 50123


@pytest.mark.parametrize(
    ("env", "field", "origin"),
    [
        ({"PROXIMITY_AGENT_PORT": "70000"}, "port", "$PROXIMITY_AGENT_PORT"),
        (
            {"PROXIMITY_AGENT_JANITOR_INTERVAL_SECONDS": "-1"},
            "janitor_interval_seconds",
            "$PROXIMITY_AGENT_JANITOR_INTERVAL_SECONDS",
        ),
        ({"PROXIMITY_AGENT_LEASE_SECONDS": "soon"}, "lease_seconds", "$PROXIMITY_AGENT_LEASE_SECONDS"),
        ({"PROXIMITY_AGENT_LOG_FORMAT": "xml"}, "log_format", "$PROXIMITY_AGENT_LOG_FORMAT"),
    ],
)
def test_a_bad_variable_is_refused_naming_the_field_and_its_origin(
    env: dict[str, str], field: str, origin: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        AgentSettings.load(env=env)
    assert refused.value.field == field
    assert f"{field} (from {origin})" in str(refused.value)


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "agent.toml", "node_slots = 0\n")
    with pytest.raises(ValidationError) as refused:
        AgentSettings.load(path, env={})
    assert refused.value.field == "node_slots"
    assert f"node_slots (from file {path})" in str(refused.value)
    assert "greater than or equal to 1" in str(refused.value)


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as in_file:
        AgentSettings.load(_write(tmp_path, "agent.toml", "prot = 1\n"), env={})
    assert in_file.value.field == "prot" and "unknown setting" in str(in_file.value)
    with pytest.raises(ValidationError) as in_env:
        AgentSettings.load(env={"PROXIMITY_AGENT_PROT": "1"})
    assert in_env.value.field == "prot" and "$PROXIMITY_AGENT_PROT is not an agent setting" in str(in_env.value)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"tls_cert_file": "/c.pem"}, None, "tls_cert_file and tls_key_file go together"),
        ({"tls_client_ca_file": "/ca.pem"}, None, "tls_client_ca_file needs TLS"),
        ({"secret_key": "k", "secret_key_file": "/k"}, None, "secret_key or secret_key_file, not both"),
        ({"port": 9464}, None, "metrics_port and port are both 9464"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, object], field: str | None, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AgentSettings.checked(values)
    assert words in str(refused.value)


def test_unreadable_or_malformed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot be read"):
        AgentSettings.load(tmp_path / "missing.toml", env={})
    with pytest.raises(ValidationError, match=r"must end in \.toml or \.json"):
        AgentSettings.load(_write(tmp_path, "agent.yaml", "port: 1\n"), env={})
    with pytest.raises(ValidationError, match="not valid TOML"):
        AgentSettings.load(_write(tmp_path, "agent.toml", "port = \n"), env={})
    with pytest.raises(ValidationError, match="must hold a table/object"):
        AgentSettings.load(_write(tmp_path, "agent.json", "[1, 2]"), env={})


def test_the_secret_key_file_must_be_private(tmp_path: Path) -> None:
    key = _write(tmp_path, "secret.key", "a-fernet-key\n")
    key.chmod(0o644)
    settings = AgentSettings.checked({"secret_key_file": str(key)})
    with pytest.raises(ValidationError) as refused:
        settings.resolved_secret_key()
    assert refused.value.field == "secret_key_file" and "readable by others" in str(refused.value)
    key.chmod(0o600)
    assert settings.resolved_secret_key() == "a-fernet-key"


def test_what_is_shown_hides_secrets() -> None:
    settings = AgentSettings.checked(
        {"database_url": "postgresql+psycopg://px:hunter2@db/proximity", "secret_key": "very-secret-key"}
    )
    shown = json.dumps(settings.public())
    assert "hunter2" not in shown and "very-secret-key" not in shown
    assert "postgresql+psycopg://px:***@db/proximity" in shown
    assert "very-secret-key" not in repr(settings)
