"""Compose durations (``stop_grace_period: 1m30s``), parsed strictly.

The compose specification writes a duration as ``{value}{unit}`` groups (units ``us``, ``ms``,
``s``, ``m``, ``h``: ``10s``, ``1m30s``, ``1h5m``, ``1.5s``), as Go's ``time.ParseDuration`` reads
them. Anything else (a bare number, ``30 sec``, a negative value) is refused rather than guessed:
the value decides how long a stop waits before it kills.
"""

from __future__ import annotations

import math
import re

__all__ = ["DURATION_EXAMPLES", "MAX_GRACE_SECONDS", "grace_seconds"]

_GROUP = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:us|µs|ms|s|m|h))+")
_UNIT_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
#: the longest grace period a stop accepts (the same bound as ``Apps.stop(timeout=...)``)
MAX_GRACE_SECONDS = 3600
DURATION_EXAMPLES = "a compose duration such as 10s, 1m30s or 2m"


def grace_seconds(value: object) -> int:
    """Whole seconds of a compose duration, from 1 to :data:`MAX_GRACE_SECONDS`; a part of a
    second counts as a whole one (PVE's shutdown ``timeout`` is whole seconds).
    Raises ValueError saying what is wrong."""
    if not isinstance(value, str) or not _WHOLE.fullmatch(value):
        raise ValueError(f"stop_grace_period {value!r} is not {DURATION_EXAMPLES}")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _GROUP.findall(value))
    whole = max(1, math.ceil(seconds))
    if whole > MAX_GRACE_SECONDS:
        raise ValueError(f"stop_grace_period {value!r} is longer than {MAX_GRACE_SECONDS // 60} minutes")
    return whole
