"""Structured logs: one JSON object per line, with secrets scrubbed before anything is written.

``configure_logging(level=, fmt="json")`` installs the handler on the root logger (idempotent).
Fields passed with ``extra={...}`` become keys of the JSON object. Scrubbing happens in the
formatter, so it covers every logger (the SDK's, APScheduler's, grpc's):

- extra fields whose name says secret (``password``, ``token``, ``secret``, ``key``, ...) are
  replaced by ``"<redacted>"``;
- in every message and value: Proximity bearer tokens (``pxt_...``), Proxmox API token headers
  (``PVEAPIToken=...``), ``password=``/``secret=``/``token=`` pairs, URL passwords
  (``postgresql://user:pw@host``), Fernet keys and PVE tickets (``PVE:user@realm:...``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "configure_logging", "redact"]

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private|credential|ticket|"
    r"^key$|_key$|authorization|cookie",
    re.IGNORECASE,
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"pxt_[A-Za-z0-9_\-]{8,}"), "pxt_" + REDACTED),
    (re.compile(r"(PVEAPIToken=[^\s=]+=)[^\s,;'\"]+"), r"\1" + REDACTED),
    (re.compile(r"PVE:[^\s:]+:[0-9A-F]{8}::[A-Za-z0-9+/=]+"), "PVE:" + REDACTED),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|token_secret|secret_key|api_key)(\s*[=:]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"\b[A-Za-z0-9_\-]{43}="), REDACTED),  # a Fernet key: 32 bytes, urlsafe base64
)
# attributes every LogRecord has: anything else came from extra={...}
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """``text`` with every secret-looking part replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _clean(name: str, value: Any) -> Any:
    if _SECRET_NAME.search(name) and value is not None and not isinstance(value, bool | int | float):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(name, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras, exception."""

    def __init__(self, *, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **self._static,
        }
        if record.threadName and record.threadName != "MainThread":
            entry["thread"] = record.threadName
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = _clean(name, value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """Plain lines for a terminal, scrubbed like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_HANDLER_NAME = "proximity-agent"


def configure_logging(
    *, level: str | int = "INFO", fmt: str = "json", stream: TextIO | None = None, static: dict[str, Any] | None = None
) -> logging.Handler:
    """Log to ``stream`` (default stderr) through one handler on the root logger, replacing the one
    a previous call installed. ``static``: keys added to every JSON line (e.g. the agent's id)."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(static=static) if fmt == "json" else _TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every run at INFO: keep that to warnings unless debugging
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return handler
