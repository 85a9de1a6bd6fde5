"""Structured logs: one JSON object per line, extras as keys, secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from proximity_agent.logs import configure_logging, redact


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    handler = configure_logging(level="DEBUG", stream=stream, static={"agent": "a1"})
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        assert root.handlers == handlers


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_a_json_object_with_the_extras(captured: io.StringIO) -> None:
    logging.getLogger("proximity_agent.test").info("job %s done", "janitor", extra={"job": "janitor", "seconds": 0.5})
    [line] = _lines(captured)
    assert line["message"] == "job janitor done"
    assert line["level"] == "info" and line["logger"] == "proximity_agent.test"
    assert line["job"] == "janitor" and line["seconds"] == 0.5 and line["agent"] == "a1"
    assert str(line["time"]).endswith("+00:00")


def test_secrets_in_messages_extras_and_tracebacks_are_scrubbed(captured: io.StringIO) -> None:
    log = logging.getLogger("proximity_agent.test")
    token = "pxt_" + "A" * 43
    log.warning("auth with %s failed", token)
    log.info(
        "host added",
        extra={
            "token_secret": "5f0c2a8e-uuid",
            "password": "hunter2",
            "url": "https://pve1:8006",
            "options": {"api_key": "k-123", "path": "/srv"},
        },
    )
    log.info("connecting to postgresql+psycopg://px:hunter2@db/proximity with password=hunter2 token: abc.def")
    log.info("header Authorization: PVEAPIToken=root@pam!px=5f0c2a8e-0000-4000-8000-000000000001")
    try:
        raise RuntimeError(f"bad key {'k' * 43}=")
    except RuntimeError:
        log.exception("key check failed")
    text = captured.getvalue()
    for secret in (
        token,
        "5f0c2a8e-uuid",
        "hunter2",
        "k-123",
        "abc.def",
        "5f0c2a8e-0000-4000-8000-000000000001",
        "k" * 43,
    ):
        assert secret not in text, secret
    lines = _lines(captured)
    assert lines[1]["url"] == "https://pve1:8006"
    assert lines[1]["options"] == {"api_key": "<redacted>", "path": "/srv"}
    assert "postgresql+psycopg://px:<redacted>@db/proximity" in str(lines[2]["message"])
    assert "RuntimeError" in str(lines[4]["exception"])


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "deployed gitea as git-1 (vmid 105) on pve1 in 12.5 s; url http://10.0.0.5:3000"
    assert redact(text) == text


def test_text_format_is_scrubbed_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(level="INFO", fmt="text", stream=stream)
    try:
        logging.getLogger("x").info("password=hunter2")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert "hunter2" not in stream.getvalue() and "password=<redacted>" in stream.getvalue()
