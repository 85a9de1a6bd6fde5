"""``users.proto``: users and API tokens in the agent's answers, and the role of a request.

One way only: UserService is the agent's own administration, not part of Proximity's API, so the
SDK has no client for it and nothing here is read back into a model (its callers are gRPC clients
generated from the proto).
"""

from __future__ import annotations

from datetime import datetime

from proximity_sdk._pb.proximity.v1 import users_pb2
from proximity_sdk._wire._base import enum_from_pb, enum_to_pb, timestamp_to_pb
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.user import ApiToken, Role, User

__all__ = ["role_from_pb", "token_to_pb", "user_to_pb"]


def role_from_pb(number: int, *, field: str = "role") -> Role:
    """A required role: unspecified is refused (ValidationError naming ``field``)."""
    value = enum_from_pb("ROLE_", users_pb2.Role, number)
    if value is None:
        raise ValidationError("role is required: ROLE_ADMIN or ROLE_MEMBER", field=field)
    return Role(value)


def user_to_pb(user: User) -> users_pb2.User:
    return users_pb2.User(
        id=user.id,
        name=user.name,
        role=enum_to_pb("ROLE_", users_pb2.Role, user.role.value),
        disabled=user.disabled,
        created_at=timestamp_to_pb(user.created_at),
    )


def token_to_pb(token: ApiToken, *, revoked_at: datetime | None = None) -> users_pb2.Token:
    """A token's record, never its secret (CreateToken sends that once, beside this)."""
    return users_pb2.Token(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        created_at=timestamp_to_pb(token.created_at),
        expires_at=timestamp_to_pb(token.expires_at),
        last_used_at=timestamp_to_pb(token.last_used_at),
        revoked_at=timestamp_to_pb(revoked_at),
    )
