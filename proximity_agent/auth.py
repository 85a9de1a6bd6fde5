"""Who is calling, and what they may do.

Every call carries ``authorization: Bearer <token>``; tokens are stored as SHA-256 hashes by the
users repository. :class:`AuthInterceptor` authenticates each call before its servicer runs,
applies the role policy of :data:`POLICY` (fail closed: a method of ours with no entry is
refused), puts the :class:`Caller` where the servicer finds it (:func:`current_caller`), and maps
whatever the servicer raises to a status code (``status.py``).

Roles: admins do everything. Members see and act on their own apps, backups, credentials and
operations; another member's resources answer NOT_FOUND, exactly like ids that do not exist, so
a member learns nothing about what others own. Admin-only calls answer PERMISSION_DENIED.

A token that authenticated is trusted again without a store lookup for
:data:`TOKEN_CACHE_SECONDS` (:class:`TokenCache`): a revocation, expiry, disabled user or role
change made anywhere (another agent, the CLI) is honoured within that time; one made through
this agent's own UpdateUser or RevokeToken empties the cache at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from proximity_agent.status import CallerNotAllowed, CallerNotAuthenticated, to_failure
from proximity_sdk._client import Proximity
from proximity_sdk.errors import NotFoundError
from proximity_sdk.models.user import Role, User

__all__ = [
    "POLICY",
    "TOKEN_CACHE_SECONDS",
    "Access",
    "AuthInterceptor",
    "Caller",
    "TokenCache",
    "bootstrap_admin_token",
    "current_caller",
    "hidden",
    "not_found",
    "policy_for",
]

_MAX_TOKEN = 512


class Access(enum.Enum):
    PUBLIC = "public"  # health checking and reflection: no token needed
    USER = "user"  # any authenticated user; the servicer checks ownership of what it touches
    ADMIN = "admin"


_A, _U = Access.ADMIN, Access.USER

# "Service/Method" -> who may call it. tests/agent/test_authz.py checks that every RPC of the
# contract is listed and that each behaves as listed.
POLICY: dict[str, Access] = {
    **{
        f"proximity.v1.CatalogService/{m}": _U
        for m in (
            "ListCatalogApps",
            "GetCatalogApp",
            "ListCatalogCategories",
            "GetCatalogStats",
            "SearchCatalogApps",
            "ListCatalogProblems",
            "ListCatalogShadowings",
        )
    },
    "proximity.v1.CatalogService/ReloadCatalog": _A,
    **{
        f"proximity.v1.HostService/{m}": _A
        for m in (
            "CreateHost",
            "GetHost",
            "ListHosts",
            "UpdateHost",
            "DeleteHost",
            "SetDefaultHost",
            "TestHost",
            "SyncNodes",
        )
    },
    **{f"proximity.v1.NodeService/{m}": _U for m in ("ListNodes", "GetNode", "ListStorages")},
    **{
        f"proximity.v1.AppService/{m}": _U
        for m in (
            "DeployApp",
            "DeployImage",
            "GetApp",
            "ListApps",
            "StartApp",
            "StopApp",
            "RestartApp",
            "DeleteApp",
            "CloneApp",
            "MigrateApp",
            "ResizeApp",
            "GetAppLogs",
            "GetAppCredentials",
            "CheckAppUpdates",
            "UpdateApp",
            "SetAppUpdateWindow",
            "GetAppUpdateWindow",
        )
    },
    "proximity.v1.AppService/RunDueAppUpdates": _A,
    "proximity.v1.AppService/DiscoverApps": _A,
    "proximity.v1.AppService/AdoptApp": _A,
    **{
        f"proximity.v1.OperationService/{m}": _U
        for m in ("GetOperation", "ListOperations", "CancelOperation", "WatchOperation")
    },
    "proximity.v1.SettingsService/GetSettings": _A,
    "proximity.v1.SettingsService/UpdateSettings": _A,
    **{f"proximity.v1.UserService/{m}": _A for m in ("CreateUser", "ListUsers", "UpdateUser")},
    **{
        f"proximity.v1.UserService/{m}": _U
        for m in ("GetUser", "GetCurrentUser", "CreateToken", "ListTokens", "RevokeToken")
    },
    **{
        f"proximity.v1.BackupService/{m}": _U
        for m in (
            "CreateBackup",
            "ListBackups",
            "GetBackup",
            "GetBackupStats",
            "RestoreBackup",
            "DeleteBackup",
            "CreateBackupSchedule",
            "ListBackupSchedules",
            "DeleteBackupSchedule",
            "ListBackupTargets",
            "GetBackupTarget",
            "ListBackupTargetKinds",
        )
    },
    **{f"proximity.v1.BackupService/{m}": _A for m in ("RunDueBackups", "CreateBackupTarget", "DeleteBackupTarget")},
    **{f"proximity.v1.MaintenanceService/{m}": _A for m in ("Reconcile", "RunJanitor", "RunNodeSync")},
}

_PUBLIC_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


def policy_for(method: str) -> Access | None:
    """The access rule of a full method name (``/pkg.Service/Method``); None: refuse it."""
    name = method.lstrip("/")
    if name.rsplit("/", 1)[0] in _PUBLIC_SERVICES:
        return Access.PUBLIC
    return POLICY.get(name)


@dataclass(frozen=True)
class Caller:
    """The authenticated user of the current call."""

    user: User

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.user.role == Role.ADMIN

    def owner_filter(self) -> str | None:
        """The owner a list is restricted to: None (everything) for admins, else the caller."""
        return None if self.is_admin else self.user.id

    def check_owner(self, owner_id: str | None, *, what: str, ident: str) -> None:
        """Members reach only what they own; anything else looks like it does not exist: the very
        answer a missing id gets (``not_found``), message, hint and metadata alike."""
        if not self.is_admin and owner_id != self.user.id:
            raise not_found(what, ident)

    def require_admin(self, doing: str) -> None:
        if not self.is_admin:
            raise CallerNotAllowed(f"only admins may {doing}")


# the SDK's own words for a missing one (the remote SDK reads exactly as the local one)
_MISSING_HINTS = {
    "app": "List the apps with px.apps.list()",
    "backup": "List them with px.backups.list()",
    "backup schedule": "List them with px.backups.schedules()",
    "operation": "List operations with px.operations.list()",
}


def not_found(what: str, ident: str) -> NotFoundError:
    """The one answer for a missing ``what`` and for one the caller may not see."""
    return NotFoundError(f"no {what} {ident!r}", hint=_MISSING_HINTS.get(what, ""))


@contextlib.contextmanager
def hidden(what: str, ident: str) -> Iterator[None]:
    """Around a lookup by id: a missing one answers exactly as one the caller may not see."""
    try:
        yield
    except NotFoundError:
        raise not_found(what, ident) from None


_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("proximity_caller")


def current_caller() -> Caller:
    """The caller of the RPC being served. Fails closed outside an authenticated call."""
    try:
        return _CALLER.get()
    except LookupError:
        raise CallerNotAuthenticated("this call was not authenticated") from None


def bearer_token(metadata: Any) -> str:
    """The token of ``authorization: Bearer <token>``; CallerNotAuthenticated when absent or malformed."""
    values = [str(value) for key, value in (metadata or ()) if key.lower() == "authorization"]
    if not values:
        raise CallerNotAuthenticated("no bearer token in the call")
    if len(values) > 1:
        raise CallerNotAuthenticated("more than one authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise CallerNotAuthenticated("the authorization metadata must be `Bearer <token>`")
    if len(token) > _MAX_TOKEN:
        raise CallerNotAuthenticated("the bearer token is too long to be one of ours")
    return token


Authenticator = Callable[[str], Awaitable[User | None]]


TOKEN_CACHE_SECONDS = 0.5
# Calls after which a cached user may be wrong: they change users or tokens through this agent.
_USER_WRITES = frozenset({"/proximity.v1.UserService/UpdateUser", "/proximity.v1.UserService/RevokeToken"})


class TokenCache:
    """An :data:`Authenticator` that remembers, for ``seconds``, who a token belonged to.

    Only successes are kept (a token created a moment ago works at once), by the token's
    SHA-256 (the token itself is not kept), at most ``max_entries`` (the oldest go first). An
    entry's age counts from before its lookup began, so a change committed during the lookup
    is still honoured within ``seconds``. Runs on the event loop: no lock needed.
    """

    def __init__(
        self,
        authenticate: Authenticator,
        *,
        seconds: float = TOKEN_CACHE_SECONDS,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self._seconds = seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, User]] = {}
        self.lookups = 0  # store lookups made (for tests and benches)

    async def __call__(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).digest()
        began = self._clock()
        hit = self._entries.get(key)
        if hit is not None and began - hit[0] < self._seconds:
            return hit[1]
        self.lookups += 1
        user = await self._authenticate(token)
        self._entries.pop(key, None)
        if user is not None:
            while len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (began, user)
        return user

    def clear(self) -> None:
        self._entries.clear()


class AuthInterceptor(aio.ServerInterceptor):
    """Authenticates and authorizes every call, and turns exceptions into status codes."""

    def __init__(self, authenticate: Authenticator, *, token_cache_seconds: float = TOKEN_CACHE_SECONDS) -> None:
        self.tokens: TokenCache | None = (
            TokenCache(authenticate, seconds=token_cache_seconds) if token_cache_seconds > 0 else None
        )
        self._authenticate: Authenticator = self.tokens or authenticate

    async def intercept_service(self, continuation: Any, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        if method in _USER_WRITES and self.tokens is not None and handler.unary_unary is not None:
            handler = _clearing_after(handler, self.tokens)
        access = policy_for(method)
        if access is Access.PUBLIC:
            return handler
        metadata = handler_call_details.invocation_metadata
        return _guarded(handler, method, access, lambda: self._admit(method, access, metadata))

    async def _admit(self, method: str, access: Access | None, metadata: Any) -> None:
        if access is None:
            raise CallerNotAllowed(f"{method} has no access rule on this agent; refused")
        user = await self._authenticate(bearer_token(metadata))
        if user is None:
            raise CallerNotAuthenticated("unknown, revoked or expired bearer token (or its user is disabled)")
        caller = Caller(user)
        if access is Access.ADMIN:
            caller.require_admin(f"call {method.rsplit('/', 1)[-1]}")
        _CALLER.set(caller)


def _clearing_after(handler: Any, tokens: TokenCache) -> Any:
    inner = handler.unary_unary

    async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await inner(request, context)
        finally:  # after the change is committed, so no lookup racing it is kept
            tokens.clear()

    return handler._replace(unary_unary=unary)


async def _abort(context: aio.ServicerContext[Any, Any], exc: BaseException, method: str) -> None:
    failure = to_failure(exc, method=method)
    context.set_trailing_metadata(failure.metadata)
    await context.abort(failure.code, failure.details)


def _guarded(handler: Any, method: str, access: Access | None, admit: Callable[[], Awaitable[None]]) -> Any:
    if handler.unary_unary is not None:
        inner_unary = handler.unary_unary

        async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            try:
                await admit()
                return await inner_unary(request, context)
            except aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                await admit()
                # closed explicitly when the client goes away, so the servicer's cleanup runs now
                async with contextlib.aclosing(inner_stream(request, context)) as items:
                    async for item in items:
                        yield item
            except aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)

        return grpc.unary_stream_rpc_method_handler(
            stream, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )

    # no client-streaming RPC exists in the contract: refuse rather than serve one unguarded
    async def refuse(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        await _abort(context, CallerNotAllowed(f"{method}: streaming requests are not served"), method)

    return grpc.stream_unary_rpc_method_handler(
        refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


def bootstrap_admin_token(
    px: Proximity,
    name: str = "admin",
    *,
    token_name: str = "bootstrap",  # noqa: S107 - a label
) -> str:
    """A new bearer token for the admin user ``name`` (created when missing). The token is
    returned once; only its hash is stored. Refuses a ``name`` that belongs to a member."""
    return px.store.users.issue_token_for(name, role=Role.ADMIN, name=token_name)[2]
