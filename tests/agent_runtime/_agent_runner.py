"""One agent replica in its own process, for the multi-agent tests: the real ``AgentReplica``
(Proximity, leader election, periodic jobs, per-replica recovery) configured from the
``PROXIMITY_AGENT_*`` variables, without the gRPC front.

Run as ``python tests/agent_runtime/_agent_runner.py``. It prints JSON lines on stdout:
``{"ready": <runner id>, "pid": ...}`` once started, ``{"leader": true|false}`` on every change of
leadership, and for a deploy ``{"operation_id": ..., "app_id": ...}`` then ``{"event": ..., "step":
...}`` per event. Its JSON logs go to stderr. It reads JSON lines on stdin:

- ``{"deploy": "<hostname>", "catalog_id": "gitea"}``: deploy in this agent's engine;
- ``{"stop": true}`` (or SIGTERM, or stdin closed): shut down gracefully, then ``{"stopped": true}``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from proximity_agent.logs import configure_logging
from proximity_agent.replica import AgentReplica
from proximity_agent.settings import AgentSettings

_out = threading.Lock()


def _say(**fields: object) -> None:
    with _out:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def _follow(replica: AgentReplica, hostname: str, catalog_id: str) -> None:
    op = replica.px.apps.deploy(catalog_id, hostname=hostname)
    _say(operation_id=op.id, app_id=op.get().app_id)
    for event in op.events():
        _say(event=event.message, step=event.step)


class _Stop(Exception):
    pass


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def main() -> int:
    settings = AgentSettings.load()
    configure_logging(level=settings.log_level, fmt="json")
    replica = AgentReplica.open(settings)
    configure_logging(level=settings.log_level, fmt="json", static={"agent": replica.identity})
    replica.listeners.append(lambda leading: _say(leader=leading))
    signal.signal(signal.SIGTERM, _terminate)
    try:
        replica.start()
        _say(ready=replica.identity, pid=__import__("os").getpid())
        for line in sys.stdin:
            order = json.loads(line)
            if order.get("stop"):
                break
            if "deploy" in order:
                threading.Thread(
                    target=_follow, args=(replica, order["deploy"], order.get("catalog_id", "gitea")), daemon=True
                ).start()
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        replica.close()
    _say(stopped=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
