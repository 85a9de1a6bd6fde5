"""Exit codes of `proximity`, and which error maps to which. Imports nothing heavy."""

from __future__ import annotations

__all__ = [
    "EPILOG",
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_ERROR = 1  # the operation failed, was cancelled or timed out; any other runtime error
EXIT_USAGE = 2  # bad arguments, invalid input, configuration errors
EXIT_NOT_FOUND = 3  # no such app, host, backup, operation, catalog entry, ...
EXIT_CONFLICT = 4  # already exists, busy, locked
EXIT_UNREACHABLE = 5  # cannot connect (Proxmox, node shell, agent), TLS, credentials refused, not allowed
EXIT_INTERRUPTED = 130  # Ctrl-C

EPILOG = """\
exit codes:
  0  ok
  1  the operation failed, was cancelled or timed out; other runtime errors
  2  usage error: bad arguments, invalid input, configuration file problems
  3  not found (app, host, backup, operation, catalog entry, ...)
  4  conflict: already exists, busy, locked
  5  unreachable or refused: no connection, TLS not trusted, bad credentials, not allowed
  130 interrupted (Ctrl-C)

connection: local by default (state in --data-dir); --agent HOST:PORT with PROXIMITY_TOKEN
talks to a proximity-agent. Settings: flags > PROXIMITY_* environment > config file
(~/.config/proximity/config.toml, or PROXIMITY_CONFIG; profiles with --profile) > defaults.
`proximity config show` prints what is in effect. Full reference: docs/cli.md.
"""


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error a command raised (a ProximityError, or the CLI's own ConfigError)."""
    from proximity_sdk import errors

    if isinstance(exc, errors.ValidationError):
        return EXIT_USAGE
    if isinstance(exc, errors.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.AlreadyExistsError | errors.ConflictError):
        return EXIT_CONFLICT
    if isinstance(
        exc, errors.UnavailableError | errors.AuthenticationError | errors.PermissionDeniedError | errors.HostKeyError
    ):
        return EXIT_UNREACHABLE
    return EXIT_ERROR
