"""UserService. Admins manage every user; a member reads itself and manages its own tokens.
CreateUser, ListUsers and UpdateUser are admin-only (auth.POLICY)."""

from __future__ import annotations

from datetime import UTC, datetime

from proximity_agent.auth import Caller, current_caller, hidden
from proximity_agent.servicers._base import Backend, page_request, paginate
from proximity_agent.status import CallerNotAllowed
from proximity_sdk._pb.proximity.v1 import users_pb2, users_pb2_grpc
from proximity_sdk._wire.common import timestamp_from_pb
from proximity_sdk._wire.users import role_from_pb, token_to_pb, user_to_pb
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.user import ApiToken

__all__ = ["UserServicer"]

_Ctx = object
_MASK = ("name", "role", "disabled")


def _subject(caller: Caller, user_id: str) -> str:
    """The user a token call is about: the caller unless an admin names another."""
    if not user_id or user_id == caller.id:
        return caller.id
    if not caller.is_admin:
        raise CallerNotAllowed("members manage their own tokens only; leave user_id empty")
    return user_id


class UserServicer(users_pb2_grpc.UserServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def CreateUser(self, request: users_pb2.CreateUserRequest, context: _Ctx) -> users_pb2.CreateUserResponse:
        role = role_from_pb(request.role)
        user = await self._b.run(self._b.px.store.users.create, request.name, role=role)
        return users_pb2.CreateUserResponse(user=user_to_pb(user))

    async def GetUser(self, request: users_pb2.GetUserRequest, context: _Ctx) -> users_pb2.GetUserResponse:
        caller = current_caller()
        if not request.user_id:
            raise ValidationError("user_id is required", field="user_id")
        caller.check_owner(request.user_id, what="user", ident=request.user_id)
        user = await self._b.run(self._b.px.store.users.get, request.user_id)
        return users_pb2.GetUserResponse(user=user_to_pb(user))

    async def GetCurrentUser(
        self,
        request: users_pb2.GetCurrentUserRequest,
        context: _Ctx,
    ) -> users_pb2.GetCurrentUserResponse:
        return users_pb2.GetCurrentUserResponse(user=user_to_pb(current_caller().user))

    async def ListUsers(self, request: users_pb2.ListUsersRequest, context: _Ctx) -> users_pb2.ListUsersResponse:
        page = page_request(request.page_size, request.page_token, method="ListUsers")
        users, token = paginate(await self._b.run(self._b.px.store.users.list), page)
        return users_pb2.ListUsersResponse(users=[user_to_pb(u) for u in users], next_page_token=token)

    async def UpdateUser(self, request: users_pb2.UpdateUserRequest, context: _Ctx) -> users_pb2.UpdateUserResponse:
        paths = list(dict.fromkeys(request.update_mask.paths))
        unknown = [p for p in paths if p not in _MASK]
        if not paths or unknown:
            raise ValidationError(
                f"update_mask must name some of {', '.join(_MASK)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                field="update_mask",
            )
        given = request.user
        role = role_from_pb(given.role, field="user.role") if "role" in paths else None

        if not given.id:
            raise ValidationError("user.id is required", field="user.id")
        user = await self._b.run(
            self._b.px.store.users.update,
            given.id,
            name=given.name if "name" in paths else None,
            role=role,
            disabled=given.disabled if "disabled" in paths else None,
        )
        return users_pb2.UpdateUserResponse(user=user_to_pb(user))

    async def CreateToken(
        self,
        request: users_pb2.CreateTokenRequest,
        context: _Ctx,
    ) -> users_pb2.CreateTokenResponse:
        subject = _subject(current_caller(), request.user_id)
        expires = timestamp_from_pb(request, "expires_at")
        if expires is not None and expires <= datetime.now(UTC):
            raise ValidationError("expires_at is in the past", field="expires_at")
        record, secret = await self._b.run(
            self._b.px.store.users.issue_token, subject, name=request.name or "default", expires_at=expires
        )
        return users_pb2.CreateTokenResponse(token=token_to_pb(record), secret=secret)

    async def ListTokens(self, request: users_pb2.ListTokensRequest, context: _Ctx) -> users_pb2.ListTokensResponse:
        subject = _subject(current_caller(), request.user_id)
        page = page_request(request.page_size, request.page_token, method="ListTokens", filters=(subject,))
        tokens, next_token = paginate(await self._b.run(self._b.px.store.users.tokens, subject), page)
        return users_pb2.ListTokensResponse(
            tokens=[token_to_pb(t, revoked_at=t.revoked_at) for t in tokens], next_page_token=next_token
        )

    async def RevokeToken(
        self,
        request: users_pb2.RevokeTokenRequest,
        context: _Ctx,
    ) -> users_pb2.RevokeTokenResponse:
        caller = current_caller()
        users = self._b.px.store.users

        def revoke() -> ApiToken:
            with hidden("API token", request.token_id):
                token = users.token(request.token_id)
            caller.check_owner(token.user_id, what="API token", ident=request.token_id)
            return users.revoke_token(token.id)

        token = await self._b.run(revoke)
        return users_pb2.RevokeTokenResponse(token=token_to_pb(token, revoked_at=token.revoked_at))
