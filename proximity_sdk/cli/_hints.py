"""Hints in the words of the CLI.

An error's ``hint`` is written for the surface that raised it: the SDK says what to call
(``px.apps.list()``). The CLI shows the command that does the same (`proximity apps list`), so a
hint that names an SDK call is rewritten here, by the table below; one naming something the CLI
cannot do says so and gives the Python call, labelled as such. Imports nothing heavy.

``tests/cli/test_hints.py`` reads every hint in the source and checks that its CLI form names no
bare SDK call: a new hint naming one fails there until this table knows it.
"""

from __future__ import annotations

import re

__all__ = ["SDK_CALL", "cli_hint", "for_cli"]

# What an SDK call looks like in a hint: px.apps.list(), catalog.search(...), op.wait(), Proximity.local()
SDK_CALL = re.compile(r"\b(?:px|catalog|op|Proximity|SecretBox)\.[a-z_]+(?:\.[a-z_]+)*(?:\([^)]*\)?)?")

# (SDK wording, CLI wording); the SDK wording is a regex, tried in order.
_TABLE: tuple[tuple[str, str], ...] = (
    (
        r"List the ids with catalog\.list\(\) or look them up with catalog\.search\(\.\.\.\)",
        "List the ids with `proximity catalog list` or look them up with `proximity catalog search TEXT`",
    ),
    (r"px\.apps\.list\(\)", "`proximity apps list`"),
    (r"px\.apps\.discover\(\)", "`proximity apps discover`"),
    (r"px\.apps\.logs\(app_id\)", "`proximity apps logs APP`"),
    (r"px\.apps\.delete", "`proximity apps rm APP`"),
    (r"px\.apps\.deploy_image\(\.\.\.\)", "`proximity apps deploy-image IMAGE --hostname NAME`"),
    (r"px\.hosts\.list\(\)", "`proximity hosts list`"),
    (
        r"Or call px\.hosts\.add\(\.\.\., check=False\) to register the host unchecked",
        "Or add it with `proximity hosts add NAME --url URL ... --no-check` to register the host unchecked",
    ),
    (r"px\.hosts\.add\(\.\.\.\)", "`proximity hosts add NAME --url URL ...`"),
    (
        r"Sync the host's nodes \(px\.hosts\.sync_nodes\)",
        "List the nodes as last synced with `proximity nodes list`; `proximity hosts test HOST` checks the host",
    ),
    (
        r"Give it with px\.hosts\.update\(host, ssh=SshAccess\(key_file=\.\.\., known_hosts=\.\.\.\)\)",
        "The CLI gives SSH access when a host is added (`proximity hosts add ... --ssh-key PATH --known-hosts "
        "PATH`); for a host already added, in Python: px.hosts.update(host, ssh=SshAccess(...))",
    ),
    (r"px\.operations\.list\(\)", "`proximity operations list`"),
    (
        r"Wait for the running operation \(px\.operations\.get\) to finish, or cancel it",
        "Wait for the running operation to finish (`proximity operations watch ID`), or cancel it "
        "(`proximity operations cancel ID`); `proximity operations list` shows it",
    ),
    (
        r"The operation is still running: call op\.wait\(\) again, or op\.cancel\(\)",
        "The operation is still running: follow it with `proximity operations watch ID`, or stop it with "
        "`proximity operations cancel ID`",
    ),
    (r"px\.backups\.list\(\)", "`proximity backups list`"),
    (r"px\.backups\.schedules\(\)", "`proximity backups schedules`"),
    (
        r"Remove it first with px\.backups\.targets\.remove\(name\)",
        "Remove it first (no CLI command yet; in Python: px.backups.targets.remove(name))",
    ),
    (
        r"List them with px\.backups\.targets\.list\(\)",
        "List them (no CLI command yet; in Python: px.backups.targets.list())",
    ),
    (
        r"Run it on the agent host, with Proximity\.local\(\) over the agent's data \(stop the agent first\)",
        "Run it on the agent host, locally over the agent's data (stop the agent first; without "
        "PROXIMITY_AGENT, with --data-dir set to the agent's data directory)",
    ),
    (
        r"Check the token given to Proximity\.connect",
        "Check the agent's token (PROXIMITY_TOKEN, --token-file, or token_file in the config)",
    ),
    (
        r"rotate keys with px\.settings\.rotate_secret_key, never by replacing the file",
        "rotate keys (no CLI command yet; in Python: px.settings.rotate_secret_key), never by replacing the file",
    ),
    (
        r"Give names as catalog\.stats\(\)\.by_source lists them",
        "Give source names as the agent's catalog_trusted_sources setting (no CLI command lists the sources yet; "
        "in Python: catalog.stats().by_source)",
    ),
    (
        r"Generate one with SecretBox\.generate_key\(\)",
        "Generate one (in Python: SecretBox.generate_key()) and keep it in the key file",
    ),
)
_COMPILED = tuple((re.compile(sdk), cli) for sdk, cli in _TABLE)
# "labelled as such": an SDK call the CLI has no command for, given after "in Python:"
_LABELLED = re.compile(r"in Python: .*$")


def for_cli(hint: str) -> str:
    """``hint`` with every SDK call it names replaced by the CLI command that does the same."""
    for pattern, replacement in _COMPILED:
        hint = pattern.sub(replacement.replace("\\", "\\\\"), hint)  # the replacement taken literally
    return hint


def bare_sdk_calls(hint: str) -> list[str]:
    """The SDK calls a CLI hint still names outside an "in Python:" label (none, for a good one)."""
    return SDK_CALL.findall(_LABELLED.sub("", hint))


def cli_hint(exc: BaseException) -> str | None:
    """The hint of an error as the CLI shows it (or None)."""
    hint = getattr(exc, "hint", None)
    return for_cli(hint) if hint else None
