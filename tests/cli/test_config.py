"""Where settings come from: flags > PROXIMITY_* environment > config file (profile, then top level) > defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.conftest import Cli


def _write(cli: Cli, text: str) -> Path:
    path = cli.tmp / "config" / "proximity" / "config.toml"  # the default place ($XDG_CONFIG_HOME)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _shown(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = cli.json(*args, "config", "show", env=env)
    return shown


def _setting(shown: dict[str, Any], key: str) -> tuple[Any, str]:
    return shown[key]["value"], shown[key]["source"]


def test_precedence_flag_over_env_over_profile_over_top_level(cli: Cli) -> None:
    a, b, c, d = (str(cli.tmp / name) for name in "abcd")
    path = _write(cli, f'data_dir = "{a}"\n\n[profiles.lab]\ndata_dir = "{b}"\n')
    no_env = {"PROXIMITY_DATA_DIR": ""}  # the fixture's own data dir is an env setting: clear it

    shown = _shown(cli, env=no_env)
    assert shown["config_path"] == str(path) and shown["profile"] is None
    assert _setting(shown, "data_dir") == (a, "config")
    assert _setting(_shown(cli, "--profile", "lab", env=no_env), "data_dir") == (b, "config")
    assert _setting(_shown(cli, env={**no_env, "PROXIMITY_PROFILE": "lab"}), "data_dir") == (b, "config")
    assert _setting(_shown(cli, "--profile", "lab", env={"PROXIMITY_DATA_DIR": c}), "data_dir") == (c, "env")
    shown = _shown(cli, "--profile", "lab", "--data-dir", d, env={"PROXIMITY_DATA_DIR": c})
    assert _setting(shown, "data_dir") == (d, "flag")
    assert shown["mode"] == "local"


def test_the_resolved_data_dir_is_the_one_used(cli: Cli) -> None:
    a, c = str(cli.tmp / "a"), str(cli.tmp / "c")
    _write(cli, f'data_dir = "{a}"\n')
    no_env = {"PROXIMITY_DATA_DIR": ""}
    cli.ok(
        "hosts",
        "add",
        "one",
        "--url",
        "https://127.0.0.1:8006",
        "--token-id",
        "root@pam!px",
        "--no-check",
        env={**no_env, "PROXIMITY_HOST_TOKEN_SECRET": "s3cret"},
    )
    assert [h["name"] for h in cli.json("hosts", "list", env=no_env)] == ["one"]
    assert cli.json("hosts", "list", env={"PROXIMITY_DATA_DIR": c}) == []
    assert [h["name"] for h in cli.json("--data-dir", a, "hosts", "list", env={"PROXIMITY_DATA_DIR": c})] == ["one"]
    assert (Path(a) / "proximity.db").exists() or any(Path(a).iterdir())


def test_default_profile_agent_token_file_and_relative_paths(cli: Cli) -> None:
    token = cli.tmp / "config" / "proximity" / "lab.token"
    token.parent.mkdir(parents=True)
    token.write_text("px_from_file\n")
    _write(
        cli,
        'profile = "lab"\n\n[profiles.lab]\nagent = "agent.lan:7443"\ntoken_file = "lab.token"\n'
        'ca_file = "lab-ca.pem"\n\n[profiles.home]\nlocal = true\n',
    )
    shown = _shown(cli)
    assert shown["profile"] == "lab" and shown["mode"] == "agent"
    assert _setting(shown, "agent") == ("agent.lan:7443", "config")
    assert _setting(shown, "token") == ("(set)", "config (token_file)")  # never printed
    assert _setting(shown, "ca_file") == (str(token.parent / "lab-ca.pem"), "config")
    assert "px_from_file" not in json.dumps(shown)
    # the environment's token beats the config's token file; a --token-file flag beats both
    assert _setting(_shown(cli, env={"PROXIMITY_TOKEN": "px_env"}), "token") == ("(set)", "env")
    flag_token = cli.tmp / "flag.token"
    flag_token.write_text("px_flag")
    shown = _shown(cli, "--token-file", str(flag_token), env={"PROXIMITY_TOKEN": "px_env"})
    assert _setting(shown, "token") == ("(set)", "flag (token_file)")
    assert _setting(_shown(cli, env={"PROXIMITY_AGENT": "other:1"}), "agent") == ("other:1", "env")
    assert _shown(cli, "--profile", "home")["mode"] == "local"
    assert _shown(cli, "--local")["mode"] == "local"


def test_config_mistakes_are_usage_errors(cli: Cli) -> None:
    path = _write(cli, '[profiles.lab]\nagent = "x:1"\n')
    out = cli.fails(2, "--profile", "prod", "config", "show")
    assert out.stderr.splitlines() == [
        f"proximity: error: no profile 'prod' in {path} (asked for by --profile)",
        "proximity: hint: Profiles there: lab",
    ]
    _write(cli, 'data_dri = "/tmp/x"\n')
    out = cli.fails(2, "config", "show")
    assert f"proximity: error: {path}: unknown key 'data_dri'" in out.stderr
    _write(cli, "data_dir = 3\n")
    assert "data_dir must be a string" in cli.fails(2, "config", "show").stderr
    _write(cli, 'data_dir = "unterminated\n')
    assert "is not valid TOML" in cli.fails(2, "config", "show").stderr
    _write(cli, '[profiles.lab]\ntoken_file = "missing.token"\nagent = "x:1"\n')
    assert "token file" in cli.fails(2, "--profile", "lab", "config", "show").stderr
