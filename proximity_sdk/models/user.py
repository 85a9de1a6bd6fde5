"""Users of the agent and their roles. Tokens are stored hashed; the plaintext is shown once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from proximity_sdk.models._html import HtmlRepr

__all__ = ["ApiToken", "Role", "User"]


class Role(StrEnum):
    """Admins manage hosts, settings and every app; members see and act on their own apps only."""

    ADMIN = "admin"
    MEMBER = "member"


class User(HtmlRepr, BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime


class ApiToken(HtmlRepr, BaseModel):
    """A bearer token's record (never the token itself)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None  # to the minute: refreshed at most once a minute
    revoked_at: datetime | None = None  # set once revoked; a revoked token never authenticates again
