"""Shared by the proximity.core modules: the connection options and the SDK client built from them,
errors turned into ``fail_json`` (message + hint, no traceback), and JSON-ready views of the models.

Two ways to reach Proximity (see the ``proximity.core.connection`` doc fragment in each module):

- local (default): ``Proximity.local(data_dir=..., database_url=..., secret_key=...)`` in the
  module's own process (the controller's Python with ``proximity`` installed); operations run in
  that process, so the module waits for them to end even with ``wait: false``;
- agent: ``Proximity.connect(agent, token=..., ca_file=..., cert_file=..., key_file=...)``.

``agent`` wins when both are given: the local options then only earn a warning (not
``secret_key``, which is often set in the environment for other uses), never a failure.
"""

from __future__ import annotations

import contextlib
import re
import traceback
from datetime import UTC, datetime, timedelta

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    from proximity_sdk import Proximity
    from proximity_sdk.errors import ProximityError

    SDK_IMPORT_ERROR = None
except ImportError:  # reported by require_sdk(), inside the module
    Proximity = None
    ProximityError = Exception
    SDK_IMPORT_ERROR = traceback.format_exc()

LOCAL_OPTIONS = ("data_dir", "database_url", "secret_key", "catalog_paths")

CONNECTION_ARGS = dict(
    data_dir=dict(type="path", fallback=(env_fallback, ["PROXIMITY_DATA_DIR"])),
    database_url=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXIMITY_DATABASE_URL"])),
    secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXIMITY_SECRET_KEY"])),
    catalog_paths=dict(type="list", elements="path"),
    agent=dict(type="str", fallback=(env_fallback, ["PROXIMITY_AGENT"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXIMITY_TOKEN"])),
    ca_file=dict(type="path", fallback=(env_fallback, ["PROXIMITY_CA_FILE"])),
    cert_file=dict(type="path", fallback=(env_fallback, ["PROXIMITY_CERT_FILE"])),
    key_file=dict(type="path", fallback=(env_fallback, ["PROXIMITY_KEY_FILE"])),
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def connection_args(**module_args):
    """The module's own arguments plus the connection options."""
    spec = dict(CONNECTION_ARGS)
    spec.update(module_args)
    return spec


def require_sdk(module):
    if SDK_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("proximity (the proximity_sdk package)"), exception=SDK_IMPORT_ERROR)


def open_client(module):
    """A Proximity client from the module's connection options (close it, or use ``with``)."""
    require_sdk(module)
    p = module.params
    if p.get("agent"):
        given = [name for name in LOCAL_OPTIONS if p.get(name) and name != "secret_key"]
        if given:
            module.warn("agent is set: ignoring the local option(s) " + ", ".join(given))
        if not p.get("token"):
            module.fail_json(msg="token is required with agent (or set PROXIMITY_TOKEN)")
        connect = getattr(Proximity, "connect", None)
        if connect is None:
            module.fail_json(msg="this version of proximity_sdk cannot connect to an agent (no Proximity.connect)")
        try:
            return connect(
                p["agent"],
                token=p["token"],
                ca_file=p.get("ca_file"),
                cert_file=p.get("cert_file"),
                key_file=p.get("key_file"),
            )
        except ProximityError as exc:
            fail(module, exc)
    try:
        return Proximity.local(
            data_dir=p.get("data_dir"),
            database_url=p.get("database_url"),
            secret_key=p.get("secret_key"),
            catalog_paths=p.get("catalog_paths") or (),
        )
    except ProximityError as exc:
        fail(module, exc)
    return None  # not reached: fail() exits


def fail(module, exc, **result):
    """Fail the task with the SDK's message (its hint included) and what kind of error it was."""
    details = {"error": type(exc).__name__}
    for attr in ("field", "hint", "step", "operation_id", "log_tail"):
        value = getattr(exc, attr, None)
        if value:
            details[attr] = value if isinstance(value, str | int | float) else str(value)
    details.update(result)
    module.fail_json(msg=str(exc), **details)


@contextlib.contextmanager
def client(module):
    """``with client(module) as px:``; SDK errors raised inside end the task cleanly (after closing)."""
    px = open_client(module)
    error = None
    try:
        yield px
    except (ProximityError, AmbiguousApp) as exc:
        error = exc
    finally:
        with contextlib.suppress(Exception):
            px.close()
    if error is not None:
        fail(module, error)


def app_view(app):
    """An app as JSON, without ``config`` (the rendered compose project may hold values the user
    passed in ``environment``)."""
    data = app.model_dump(mode="json")
    data.pop("config", None)
    return data


def find_app(px, hostname, host=None):
    """The app named ``hostname`` (on ``host``, else on any host), or None. Several hosts having one
    by that name and no ``host`` given is an ambiguity the caller must resolve."""
    found = [a for a in px.apps.list(search=hostname, host=host) if a.hostname == hostname]
    if len(found) > 1:
        raise AmbiguousApp(hostname, len(found))
    return found[0] if found else None


class AmbiguousApp(Exception):
    def __init__(self, hostname, count):
        super().__init__(f"{count} apps are named {hostname!r} on different hosts; set host to say which one")


def parse_duration(value, name):
    """Seconds from ``90``, ``90s``, ``30m``, ``12h``, ``7d`` or ``2w``; ValueError names the option."""
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{name} must be a duration such as 3600, 30m, 12h, 7d or 2w, not {value!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def as_utc(moment):
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utcnow():
    return datetime.now(UTC)
