"""A deploy in its own process, for the crash-recovery tests: it dies by SIGKILL at a chosen step.

Run as ``python tests/apps/_crash_child.py``; once its imports are done it reads one JSON line
from stdin (so tests keep one started ahead, and say "go" when the stage is set). The JSON names
the database (``database_url``, ``data_dir``, ``secret_key``), the ``lease_seconds`` of this
process, the app (``catalog_id``, ``hostname``) and what to do:

- ``kill_at``: a deploy step; when the event "<step>: started" arrives this process kills itself
  with SIGKILL (no cleanup, no atexit, no final heartbeat: as a power cut would), after
  ``kill_delay`` seconds when given (to land later inside the step). The host (fakepve, the test
  sshd) was registered in the database by the parent.
- ``kill_after_insert``: a table name; the process dies at the next statement of the same thread
  after the first INSERT into it: after its commit, between a reservation and its journal entry (a
  window no event marks), or inside the unit of work that makes both (then neither is written).
- neither: follow the deploy to its end and exit 0 when it succeeded.

It prints one JSON line ``{"operation_id": ..., "app_id": ...}`` as soon as the deploy is
recorded, then ``{"event": ...}`` for each event; it exits 3 when the deploy ended before the
step came (the test then fails with that output). It opens Proximity without recovering
orphans: recovering is the parent's job, and a child must never take over another child's work.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# tests/apps/_crash_child.py -> the repository root, so `proximity_sdk` and `tests` import
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import event

from proximity_sdk._client import Proximity
from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.errors import ProximityError
from proximity_sdk.plugins.manager import PluginManager
from proximity_sdk.store import Store


def _say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _die_after_insert(store: Store, table: str) -> None:
    """SIGKILL at the first statement that follows an INSERT INTO ``table`` in the same thread:
    the insert's transaction has committed by then, unless it is a unit of work's (``Store.unit``),
    whose statements are then all lost together."""
    armed: dict[str, int] = {}

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if armed.get("thread") == threading.get_ident():
            os.kill(os.getpid(), signal.SIGKILL)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()}"):
            armed["thread"] = threading.get_ident()

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)


def main() -> int:
    line = sys.stdin.readline()
    if not line.strip():
        sys.stderr.write("usage: echo '<json options>' | _crash_child.py\n")
        return 2
    options = json.loads(line)
    kill_at: str | None = options.get("kill_at")
    delay = float(options.get("kill_delay") or 0.0)
    manager = PluginManager(entry_points=False, plugins=())
    store = Store.open(options["database_url"], data_dir=Path(options["data_dir"]), secret_key=options["secret_key"])
    px = Proximity(
        store,
        manager,
        Catalog(catalog_paths=[], plugins=manager),
        lease_seconds=float(options["lease_seconds"]),
        recover=False,
    )
    if options.get("kill_after_insert"):
        _die_after_insert(store, str(options["kill_after_insert"]))
    op = px.apps.deploy(options.get("catalog_id", "gitea"), hostname=options["hostname"])
    _say(operation_id=op.id, app_id=op.get().app_id)
    for logged in op.events():
        _say(event=logged.message, step=logged.step)
        if kill_at is not None and logged.message == f"{kill_at}: started":
            if delay:
                time.sleep(delay)
            os.kill(os.getpid(), signal.SIGKILL)
    if kill_at is not None or options.get("kill_after_insert"):
        _say(error="the deploy ended before the point of death", status=op.status.value)
        return 3
    try:
        app = op.wait()
    except ProximityError as exc:
        _say(error=str(exc))
        return 1
    _say(done=app.id, status=app.status.value)
    px.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
