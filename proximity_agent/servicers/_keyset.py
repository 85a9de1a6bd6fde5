"""Keyset page tokens (AIP-158) for the lists the store pages: ListApps, ListOperations, ListBackups.

A token is opaque to clients: base64url of ``{"v": 1, "q": <query scope>, "t": <created_at>,
"i": <id>}``, the position after the last item of the page it came with. The agent parses it
strictly (exactly these keys, this version, an aware ISO timestamp, an id of the characters ids
use) and refuses anything else with INVALID_ARGUMENT naming ``page_token``; ``q`` ties it to
the method and filters it was issued for. It is not signed, and needs not be: every query still
applies the caller's owner filter, so an edited token can only move within what the caller may
list anyway. Any agent sharing the store accepts the tokens of the others.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from proximity_agent.servicers._base import page_request
from proximity_sdk.errors import ValidationError
from proximity_sdk.store._keyset import Cursor

__all__ = ["KeysetPage", "keyset_request"]

_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MAX_TOKEN = 512


@dataclass(frozen=True)
class KeysetPage:
    """How long the page is, where it starts (None: at the beginning) and the query it belongs to."""

    size: int
    scope: str
    after: Cursor | None

    def next_token(self, last: Cursor | None) -> str:
        """The token of the page after the one ending with ``last`` (None: this was the last page)."""
        if last is None:
            return ""
        raw = json.dumps(
            {"v": _VERSION, "q": self.scope, "t": last[0].isoformat(), "i": last[1]}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad(why: str) -> ValidationError:
    return ValidationError(
        f"page_token is not valid: {why}",
        field="page_token",
        hint="Pass next_page_token from the previous response unchanged, "
        "or leave page_token empty to start from the first page",
    )


def keyset_request(page_size: int, page_token: str, *, method: str, filters: Sequence[object] = ()) -> KeysetPage:
    """Validate ``page_size`` (as every list) and the keyset ``page_token``."""
    first = page_request(page_size, "", method=method, filters=filters)
    if not page_token:
        return KeysetPage(first.size, first.scope, None)
    if len(page_token) > _MAX_TOKEN:
        raise _bad("too long")
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        decoded = json.loads(base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise _bad("not a token this agent issued") from None
    if not isinstance(decoded, dict) or set(decoded) != {"v", "q", "t", "i"} or decoded["v"] != _VERSION:
        raise _bad("not a token this agent issued (or one of an older version)")
    if decoded["q"] != first.scope:
        raise _bad(f"it belongs to another query (a different method or filters than this {method})")
    at, row_id = decoded["t"], decoded["i"]
    if not isinstance(row_id, str) or not _ID.match(row_id) or not isinstance(at, str):
        raise _bad("its position is malformed")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise _bad("its position is malformed") from None
    if when.tzinfo is None:
        raise _bad("its position is malformed")
    return KeysetPage(first.size, first.scope, (when, row_id))
