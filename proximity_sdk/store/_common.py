"""Helpers every repository shares: request validation and session plumbing."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session

# re-exported: the repositories validate their requests with them
from proximity_sdk.models._requests import checked, validate_request
from proximity_sdk.store.crypto import SecretBox

__all__ = ["SessionFactory", "StoreContext", "checked", "validate_request"]


class SessionFactory(Protocol):
    def __call__(self, *, immediate: bool = False) -> AbstractContextManager[Session]: ...


class StoreContext:
    """What repositories share: the way to a session and the current SecretBox (rotation swaps it)."""

    def __init__(self, session: SessionFactory, box: SecretBox) -> None:
        self.session = session
        self.box = box
