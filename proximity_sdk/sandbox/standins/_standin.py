"""Shared code of the command stand-ins (pct, pvesm and the container tools).

The stand-ins run under the test sshd (node tools) or inside a stand-in container (container
tools), always with the system ``/usr/bin/python3`` and the standard library only, so that they
work in the chroot that ``pct exec`` builds.

State lives in one directory named by ``PROXIMITY_STANDIN_STATE`` (on the node: a symlink that
the harness re-points for every test; inside a container: the same directory bound at
``/.standin-state``):

- ``calls.jsonl``: one JSON object per call: ``tool``, ``vmid`` (set inside a container),
  ``argv`` (every argument as base64 of its exact bytes), ``time``.
- ``rules/<tool>.json``: a list of scripted behaviours, first match wins; each rule has
  ``match`` (substring of the space-joined arguments, or null for any call), ``times``
  (how many calls it still applies to, null for all), ``stdout``, ``stderr``, ``exit_code``,
  ``sleep`` (seconds before answering). A matching rule replaces the tool's own behaviour.
"""

from __future__ import annotations

# Only cheap modules at the top: every stand-in call pays for its imports (json and base64 pull in
# `re`, ~12 ms), so the record line is written by hand and json is imported only to read rules.
import binascii
import fcntl
import os
import sys
import time

STATE_ENV = "PROXIMITY_STANDIN_STATE"
VMID_ENV = "PROXIMITY_STANDIN_VMID"


def state_dir() -> str:
    """The current state directory, resolved once so a re-pointed symlink does not split a call."""
    raw = os.environ.get(STATE_ENV)
    if not raw:
        sys.stderr.write(f"stand-in: {STATE_ENV} is not set; run me through the test sshd\n")
        raise SystemExit(97)
    return os.path.realpath(raw)


class locked:
    """An exclusive lock on ``path`` (created if missing) across processes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


def record(state: str, tool: str, args: list[str]) -> None:
    """Append one call to ``calls.jsonl`` with every argument's exact bytes."""
    vmid = os.environ.get(VMID_ENV, "")
    argv = ", ".join('"' + binascii.b2a_base64(os.fsencode(a), newline=False).decode("ascii") + '"' for a in args)
    entry = '{"tool": "%s", "vmid": %s, "argv": [%s], "time": %r}\n' % (  # noqa: UP031
        tool,
        vmid if vmid.isdigit() else "null",
        argv,
        time.time(),
    )
    line = entry.encode("ascii")
    path = os.path.join(state, "calls.jsonl")
    with locked(path + ".lock"):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def take_rule(state: str, tool: str, args: list[str]) -> dict[str, object] | None:
    """The first scripted rule matching this call, its ``times`` counted down."""
    path = os.path.join(state, "rules", f"{tool}.json")
    if not os.path.exists(path):
        return None
    import json

    joined = " ".join(args)
    with locked(path + ".lock"):
        with open(path, encoding="utf-8") as fh:
            rules: list[dict[str, object]] = json.load(fh)
        for rule in rules:
            if rule.get("match") is not None and rule["match"] not in joined:
                continue
            times = rule.get("times")
            if times is not None:
                if times <= 0:
                    continue
                rule["times"] = times - 1
                tmp = path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(rules, fh)
                os.replace(tmp, path)
            return rule
    return None


def answer(rule: dict[str, object]) -> int:
    """Play a scripted rule: wait, print, and return its exit code."""
    if rule.get("sleep"):
        time.sleep(float(rule["sleep"]))
    out = rule.get("stdout") or ""
    err = rule.get("stderr") or ""
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()
    return int(rule.get("exit_code", 0))


def generic_tool(tool: str, default: dict[str, str] | None = None) -> None:
    """A recording tool: scripted rules first, else the default output for a known call, exit 0.

    ``default`` maps a space-joined argument prefix to what the tool prints for it.
    """
    state = state_dir()
    args = sys.argv[1:]
    record(state, tool, args)
    rule = take_rule(state, tool, args)
    if rule is not None:
        raise SystemExit(answer(rule))
    joined = " ".join(args)
    for prefix, text in (default or {}).items():
        if joined.startswith(prefix):
            sys.stdout.write(text)
            break
    raise SystemExit(0)
