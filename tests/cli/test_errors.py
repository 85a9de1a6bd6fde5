"""Exit codes and messages: one line `proximity: error: ...` and a hint on stderr, never a traceback."""

from __future__ import annotations

import json
import socket

from tests.cli.conftest import Cli

TOKEN = "root@pam!proximity"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret(cli: Cli) -> str:
    path = cli.tmp / "secret"
    path.write_text("s3cret\n")
    return str(path)


def test_help_lists_the_commands_and_the_exit_codes(cli: Cli) -> None:
    out = cli.ok("--help")
    for command in ("catalog", "hosts", "nodes", "apps", "backups", "operations", "sandbox"):
        assert f"\n    {command} " in out.stdout
    assert "exit codes:" in out.stdout
    assert "  3  not found" in out.stdout and "  5  unreachable" in out.stdout


def test_a_group_without_its_command_prints_its_help(cli: Cli) -> None:
    out = cli.fails(2, "apps")
    assert "deploy" in out.stdout and "credentials" in out.stdout


def test_unknown_app_is_not_found(cli: Cli) -> None:
    out = cli.fails(3, "apps", "show", "nope")
    assert out.stderr.splitlines() == [
        "proximity: error: no app 'nope'",
        "proximity: hint: List the apps with `proximity apps list`",
    ]
    assert out.stdout == ""
    assert cli.fails(3, "--json", "apps", "logs", "nope").stdout == ""  # nothing but JSON on stdout: none at all


def test_unknown_catalog_app_names_close_matches(cli: Cli) -> None:
    out = cli.fails(3, "catalog", "show", "gitae")
    assert out.stderr.startswith("proximity: error: no app 'gitae' in the catalog\n")
    assert "gitea" in out.stderr.splitlines()[1]


def test_bad_hostname_is_a_usage_error(cli: Cli) -> None:
    out = cli.fails(2, "apps", "deploy", "gitea", "--hostname", "Bad_Name!")
    assert out.stderr.startswith("proximity: error: hostname 'Bad_Name!' is not a valid host name\n")
    assert "proximity: hint:" in out.stderr


def test_bad_arguments_are_usage_errors(cli: Cli) -> None:
    assert "required: --hostname" in cli.fails(2, "apps", "deploy", "gitea").stderr
    assert "invalid int value" in cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--cores", "x").stderr
    out = cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--cores", "0")
    assert out.stderr.startswith("proximity: error: --cores: Input should be greater than or equal to 1")
    assert "no variable nokey" in cli.fails(2, "apps", "deploy", "gitea", "--hostname", "a", "--env", "nokey").stderr


def test_no_host_yet_says_how_to_add_one(cli: Cli) -> None:
    out = cli.fails(3, "apps", "deploy", "gitea", "--hostname", "git-1")
    assert "no host registered yet" in out.stderr


def test_secret_missing_without_a_terminal(cli: Cli) -> None:
    out = cli.fails(2, "hosts", "add", "lab", "--url", "https://127.0.0.1:8006", "--token-id", TOKEN)
    assert "token secret missing" in out.stderr and "--token-secret-file" in out.stderr


def test_secret_from_stdin_and_a_name_taken_twice_is_a_conflict(cli: Cli) -> None:
    args = ("hosts", "add", "lab", "--url", "https://127.0.0.1:8006", "--token-id", TOKEN, "--no-check")
    cli.ok(*args, "--token-secret-file", "-", stdin="s3cret\n")
    out = cli.fails(4, *args, "--token-secret-file", _secret(cli))
    assert "proximity: error: a host named 'lab' already exists" in out.stderr
    listed = cli.json("hosts", "list")
    assert [h["name"] for h in listed] == ["lab"]
    assert "s3cret" not in str(listed)


def test_unreachable_proxmox_host(cli: Cli) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    out = cli.fails(5, "hosts", "add", "lab", "--url", url, "--token-id", TOKEN, "--token-secret-file", _secret(cli))
    assert out.stderr.startswith("proximity: error: cannot connect to Proxmox")
    assert cli.json("hosts", "list") == []  # nothing stored
    cli.ok("hosts", "add", "lab", "--url", url, "--token-id", TOKEN, "--token-secret-file", _secret(cli), "--no-check")
    out = cli.fails(5, "--json", "hosts", "test", "lab")
    check = json.loads(out.stdout)
    assert check["ok"] is False and check["error_kind"] == "UnreachableError"


def test_missing_config_file(cli: Cli) -> None:
    missing = cli.tmp / "nowhere" / "config.toml"
    out = cli.fails(2, "apps", "list", env={"PROXIMITY_CONFIG": str(missing)})
    assert out.stderr.splitlines()[0] == f"proximity: error: config file '{missing}' does not exist"
    out = cli.fails(2, "--config", str(missing), "apps", "list")
    assert "does not exist" in out.stderr
    out = cli.fails(2, "--profile", "lab", "apps", "list")  # a profile, but no config file at all
    assert "profile 'lab' asked for by --profile, but there is no config file" in out.stderr


def test_unreachable_agent(cli: Cli) -> None:
    target = f"127.0.0.1:{_closed_port()}"
    out = cli.fails(5, "--agent", target, "apps", "list", env={"PROXIMITY_TOKEN": "px_nothing"}, timeout=90)
    assert out.stderr.startswith("proximity: error: ")
    assert target in out.stderr or "connect" in out.stderr.lower()


def test_agent_without_a_token(cli: Cli) -> None:
    out = cli.fails(2, "apps", "list", env={"PROXIMITY_AGENT": "127.0.0.1:7443"})
    assert "agent 127.0.0.1:7443 needs a token" in out.stderr


def test_local_flag_ignores_a_configured_agent(cli: Cli) -> None:
    assert cli.json("--local", "apps", "list", env={"PROXIMITY_AGENT": "127.0.0.1:1"}) == []


def test_unexpected_error_is_short_and_points_to_debug(cli: Cli) -> None:
    data = cli.tmp / "corrupt"
    data.mkdir()
    (data / "proximity.db").write_text("not a database\n")  # something the store does not classify
    out = cli.fails(1, "--data-dir", str(data), "hosts", "list")
    assert out.stderr.startswith("proximity: error: unexpected DatabaseError: ")
    assert out.stderr.splitlines()[-1] == (
        "proximity: hint: Run again with --debug for the traceback (and report it: it is a bug)"
    )
    out = cli.run("--debug", "--data-dir", str(data), "hosts", "list")
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr  # --debug shows it


def test_no_command_prints_usage_and_exits_2(cli: Cli) -> None:
    out = cli.fails(2)
    assert "sandbox" in out.stdout and "exit codes:" in out.stdout


def test_unknown_command_is_a_usage_error(cli: Cli) -> None:
    out = cli.fails(2, "frobnicate")
    assert "invalid choice" in out.stderr
