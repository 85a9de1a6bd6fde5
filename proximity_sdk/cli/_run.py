"""Run one command: settings, client, and every error turned into a message and an exit code."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from proximity_sdk.cli._exit import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code_for

__all__ = ["error_line", "run"]


def error_line(exc: BaseException) -> tuple[str, str | None]:
    """The message and the hint of a ProximityError, apart (``str(exc)`` joins them); the hint in
    the CLI's words (a command where the SDK names a call: :mod:`proximity_sdk.cli._hints`)."""
    from proximity_sdk.cli._hints import for_cli

    text = str(exc)
    hint = getattr(exc, "hint", None) or None
    if hint and text.endswith(f". {hint}"):
        text = text[: -len(hint) - 2]
    return text, for_cli(hint) if hint else None


def _report(message: str, hint: str | None) -> None:
    print(f"proximity: error: {message}", file=sys.stderr)
    if hint:
        print(f"proximity: hint: {hint}", file=sys.stderr)


def _pydantic_error(exc: BaseException) -> str | None:
    module = sys.modules.get("pydantic")
    if module is None or not isinstance(exc, module.ValidationError):
        return None
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(problems)


def run(args: argparse.Namespace, handler: str) -> int:
    debug = bool(getattr(args, "debug", False))
    if debug:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    module_name, function_name = handler.split(":")
    function: Any = getattr(importlib.import_module(f"proximity_sdk.cli.{module_name}"), function_name)
    if getattr(args, "raw_handler", False):
        return _guarded(lambda: function(args), debug=debug)
    contexts: list[Any] = []

    def command() -> int:
        from proximity_sdk.cli._context import Context
        from proximity_sdk.cli._settings import resolve

        contexts.append(Context(args, resolve(args)))
        return int(function(contexts[0]))

    code = _guarded(command, debug=debug)
    # closed after the error is reported: locally close() waits for this process's operations
    if contexts:
        closed = _guarded(lambda: contexts[0].close() or EXIT_OK, debug=debug)
        code = code or closed
    return code


def _guarded(call: Callable[[], Any], *, debug: bool) -> int:
    """Run ``call``; every error becomes its message on stderr and an exit code."""
    from proximity_sdk.errors import ProximityError

    try:
        return int(call())
    except ProximityError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        _report(*error_line(exc))
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("proximity: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `proximity apps list | head`: the reader left; nothing more to say
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        invalid = _pydantic_error(exc)
        if invalid is not None:
            _report(f"invalid input: {invalid}", None)
            return EXIT_USAGE
        if debug:
            import traceback

            traceback.print_exc()
            _report(
                f"unexpected {type(exc).__name__}: {exc}",
                "This is a bug in proximity; please report it with the traceback above",
            )
        else:
            _report(
                f"unexpected {type(exc).__name__}: {exc}",
                "Run again with --debug for the traceback (and report it: it is a bug)",
            )
        return EXIT_ERROR
