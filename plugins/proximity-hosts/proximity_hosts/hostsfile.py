"""`HostsFile`: the block of lines Proximity owns in a hosts file, changed atomically under a lock.

Two hidden files live next to the hosts file: ``.<name>.proximity.json`` (app id -> line, so a
line can be removed after its app is gone) and ``.<name>.proximity.lock`` (the `flock` that
serialises writers across threads and processes; the hosts file itself cannot carry the lock
because every write replaces its inode).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["BEGIN_MARKER", "END_MARKER", "HostsFile", "HostsFileError", "render"]

BEGIN_MARKER = "# BEGIN proximity"
END_MARKER = "# END proximity"
_BLOCK_NOTE = "# written by the proximity-hosts plugin: edits inside this block are overwritten"
_STATE_VERSION = 1


class HostsFileError(Exception):
    """The hosts file or its state cannot be changed safely; the message says how to fix it."""


class HostsFile:
    """The Proximity block of the hosts file at ``path``, one line per app id."""

    def __init__(self, path: Path, *, lock_timeout: float = 10.0) -> None:
        self.path = path
        self.state_path = path.with_name(f".{path.name}.proximity.json")
        self.lock_path = path.with_name(f".{path.name}.proximity.lock")
        self.lock_timeout = lock_timeout

    def set(self, app_id: str, line: str) -> bool:
        """Add or replace the line of ``app_id``; True when the hosts file changed."""
        return self._change(app_id, line)

    def remove(self, app_id: str) -> bool:
        """Remove the line of ``app_id`` (nothing when it has none); True when the hosts file changed."""
        return self._change(app_id, None)

    def entries(self) -> dict[str, str]:
        """The recorded lines by app id."""
        with self._locked():
            return self._read_state()

    # implementation -----------------------------------------------------------------------

    def _change(self, app_id: str, line: str | None) -> bool:
        with self._locked():
            entries = self._read_state()
            updated = dict(entries)
            if line is None:
                updated.pop(app_id, None)
            else:
                updated[app_id] = line
            # surrogateescape: bytes of foreign lines that are not UTF-8 are written back unchanged
            current = self.path.read_text(encoding="utf-8", errors="surrogateescape") if self.path.exists() else ""
            text = render(current, updated.values(), where=self.path)
            # state first: the block is always rendered from it, so a crash between the two writes
            # is repaired by the next change
            if updated != entries:
                state = {"version": _STATE_VERSION, "entries": dict(sorted(updated.items()))}
                _atomic_write(self.state_path, json.dumps(state, indent=1) + "\n")
            if text == current:
                return False
            _atomic_write(self.path, text)
            return True

    def _read_state(self) -> dict[str, str]:
        try:
            raw = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            entries = data["entries"]
            if data.get("version") != _STATE_VERSION or not isinstance(entries, dict):
                raise TypeError("unexpected layout")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
                raise TypeError("entries must map strings to strings")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HostsFileError(
                f"{self.state_path} is not a proximity-hosts state file ({exc}); delete it to start "
                "over (the block is then rebuilt as apps are deployed, started or restarted)"
            ) from exc
        return dict(entries)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise HostsFileError(
                            f"{self.lock_path} stayed locked for {self.lock_timeout:g}s; "
                            "is another process stuck while writing the hosts file?"
                        ) from exc
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def render(current: str, lines: Iterable[str], *, where: Path) -> str:
    """``current`` with its Proximity block replaced by ``lines`` (sorted), in place; appended
    when there was none, dropped when ``lines`` is empty. Lines outside the block are kept as they are."""
    block_lines = sorted(set(lines))
    kept = current.splitlines(keepends=True)
    begins = [i for i, text in enumerate(kept) if text.strip() == BEGIN_MARKER]
    ends = [i for i, text in enumerate(kept) if text.strip() == END_MARKER]
    if len(begins) > 1 or len(ends) > 1 or len(begins) != len(ends) or (begins and begins[0] > ends[0]):
        raise HostsFileError(
            f"{where} has unmatched or repeated '{BEGIN_MARKER}' / '{END_MARKER}' lines; "
            "fix or remove them by hand (the plugin never guesses which lines are its own)"
        )
    block = [BEGIN_MARKER, _BLOCK_NOTE, *block_lines, END_MARKER] if block_lines else []
    block = [f"{text}\n" for text in block]
    if begins:
        kept[begins[0] : ends[0] + 1] = block
    elif block:
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        kept.extend(block)
    return "".join(kept)


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by a fully written file, keeping its mode (and owner, when allowed)."""
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), (st.st_mode & 0o7777) if st else 0o644)
            if st is not None and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
