"""The Proxmox VE API client: proxmoxer over HTTPS, with our auth, retry and error rules.

- Auth by API token (preferred) or by ticket (user + password). Tickets are renewed well
  before PVE's 2 h expiry, and a ticket that expired or was revoked mid-run is replaced by
  logging in again once, on the 401, then the request is repeated (a 401 means PVE did not
  run it, so this is safe for writes too).
- TLS is verified by default; ``ca_file`` is the bundle to verify with. A certificate that
  does not verify is a :class:`TLSError`, never a silent downgrade.
- Only reads (GET) are retried, on transient faults, with capped exponential backoff.
  Writes are never repeated blindly: the caller checks whether they took effect.
- One client may be shared by threads: the requests session is shared, logins are locked.
- The environment's proxy settings (``HTTPS_PROXY``, ``NO_PROXY``, ...) and CA bundle
  (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, for ``verify_tls=True`` without ``ca_file``) are
  read once, when the client first connects, not at every request as requests would (0.1 ms a
  request alone; about a quarter of a request's CPU in ``bench/lifecycle.py --profile``). A
  change of them afterwards needs a new client.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import requests.utils
from proxmoxer import ProxmoxAPI
from pydantic import BaseModel, TypeAdapter

from proximity_sdk.errors import AuthenticationError, ProxmoxError, TransientError, ValidationError
from proximity_sdk.models.proxmox import (
    ClusterResource,
    LxcConfig,
    LxcInterface,
    LxcStatus,
    NodeStatus,
    PveNode,
    PveVersion,
    StorageStatus,
    StorageVolume,
    TaskLogLine,
    TaskStatus,
)
from proximity_sdk.proxmox._classify import classify_exception
from proximity_sdk.proxmox.upid import Upid
from proximity_sdk.proxmox.validate import (
    check_ca_file,
    check_node_name,
    check_storage_id,
    check_timeout,
    check_token_id,
    check_url,
    check_userid,
    check_vmid,
)

if TYPE_CHECKING:
    from proximity_sdk.proxmox.task_watch import NodeTaskWatch

__all__ = ["ProxmoxClient"]

Method = Literal["GET", "POST", "PUT", "DELETE"]
ResourceKind = Literal["vm", "storage", "node", "sdn"]
_M = TypeVar("_M", bound=BaseModel)

# PVE tickets live 2 h; renewing at half-life leaves room for clock skew between nodes.
DEFAULT_TICKET_RENEW_AFTER = 3600.0


@functools.cache
def _list_of(model: type[_M]) -> TypeAdapter[list[_M]]:
    # built once per model: building the adapter's validator cost more than validating a listing
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _segment(value: object) -> str:
    """One path segment, percent-encoded (UPIDs hold ':' '@' '!', volume ids '/')."""
    return quote(str(value), safe="")


def _form_value(value: object) -> object:
    # PVE wants booleans as 0/1; requests would send "True".
    if isinstance(value, bool):
        return int(value)
    return value


class ProxmoxClient:
    """A client for one Proxmox VE cluster (any node's API serves the whole cluster).

    Give ``token_id`` + ``token_secret``, or ``user`` + ``password``. Everything is checked
    before any network call; the first request logs in (ticket auth).

    ``request_count`` counts every HTTP request sent, logins included.
    """

    def __init__(
        self,
        *,
        url: str,
        token_id: str | None = None,
        token_secret: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        ca_file: str | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        read_retries: int = 3,
        retry_backoff: tuple[float, float] = (0.2, 2.0),
        ticket_renew_after: float = DEFAULT_TICKET_RENEW_AFTER,
    ) -> None:
        self.url = check_url(url)
        #: Sees this host's tasks end on their nodes (set by whoever has the node shell; see
        #: ``proximity_sdk.proxmox.task_watch``); ``wait_task`` uses it. None: polling only.
        self.task_watch: NodeTaskWatch | None = None
        self._timeout = check_timeout(timeout)
        self._token: tuple[str, str, str] | None = None
        self._user: str | None = None
        self._password: str | None = None
        if token_id is not None or token_secret is not None:
            if user is not None or password is not None:
                raise ValidationError(
                    "give either an API token or a user and password, not both",
                    field="token_id",
                    hint="An API token is preferred: drop user/password",
                )
            token_user, token_name = check_token_id(token_id)
            if not token_secret or not isinstance(token_secret, str):
                raise ValidationError(
                    "token_secret is missing",
                    field="token_secret",
                    hint="Give the secret (a UUID) shown once when the token was created",
                )
            self._token = (token_user, token_name, token_secret)
        elif user is not None or password is not None:
            self._user = check_userid(user)
            if not password or not isinstance(password, str):
                raise ValidationError(
                    "password is missing",
                    field="password",
                    hint="Give the user's password, or use an API token instead",
                )
            self._password = password
        else:
            raise ValidationError(
                "no credentials given",
                field="token_id",
                hint="Give token_id='user@realm!name' and token_secret, or user and password",
            )
        if ca_file is not None:
            if not verify_tls:
                raise ValidationError(
                    "ca_file was given but verify_tls=False",
                    field="ca_file",
                    hint="Keep verify_tls=True to verify with the CA file, or drop ca_file",
                )
            ca_file = check_ca_file(ca_file)
        self._verify: bool | str = ca_file if ca_file is not None else bool(verify_tls)
        if not isinstance(read_retries, int) or read_retries < 0:
            raise ValidationError("read_retries must be a non-negative integer", field="read_retries")
        self._read_retries = read_retries
        self._backoff = check_timeout(retry_backoff, field="retry_backoff")
        if ticket_renew_after <= 0 or ticket_renew_after >= 7200:
            raise ValidationError(
                "ticket_renew_after must be between 0 and 7200 seconds",
                field="ticket_renew_after",
                hint="PVE tickets expire after 2 hours",
            )
        self._renew_after = float(ticket_renew_after)

        self._api: Any = None
        self._auth_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.request_count = 0
        self.login_count = 0

    # ------------------------------------------------------------------ plumbing

    @property
    def auth_kind(self) -> Literal["token", "ticket"]:
        return "token" if self._token else "ticket"

    def __repr__(self) -> str:
        who = f"{self._token[0]}!{self._token[1]}" if self._token else self._user
        return f"ProxmoxClient({self.url!r}, {self.auth_kind}={who!r})"

    def __enter__(self) -> ProxmoxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections (the client can be used again; it reconnects)."""
        with self._auth_lock:
            api, self._api = self._api, None
        if api is not None:
            api._store["session"].close()

    def _count(self) -> None:
        with self._count_lock:
            self.request_count += 1

    def _connect(self) -> Any:
        """The proxmoxer API, logging in first (ticket auth) or again when the ticket is old."""
        api = self._api
        if api is not None and (self._token or not self._ticket_is_old(api)):
            return api
        with self._auth_lock:
            api = self._api
            if api is None:
                api = self._build()
                self._api = api
            elif not self._token and self._ticket_is_old(api):
                self._login(api)
            return api

    def _ticket_is_old(self, api: Any) -> bool:
        return bool(time.monotonic() - api._backend.auth.birth_time >= self._renew_after)

    def _build(self) -> Any:
        parts = urlsplit(self.url)
        host = parts.netloc
        verify = self._verify
        if verify is True:  # what requests would take from the environment at every request
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        common: dict[str, Any] = {"backend": "https", "verify_ssl": verify, "timeout": self._timeout}
        if self._token:
            user, name, secret = self._token
            return self._read_environment_once(
                ProxmoxAPI(host, user=user, token_name=name, token_value=secret, **common)
            )
        self._count_login()
        try:
            api = ProxmoxAPI(host, user=self._user, password=self._password, **common)
        except Exception as exc:
            raise classify_exception(exc, method="POST", path="/access/ticket") from exc
        # We renew under our lock; proxmoxer's own renewal is unlocked and posts the old ticket.
        api._backend.auth.renew_age = float("inf")
        return self._read_environment_once(api)

    def _read_environment_once(self, api: Any) -> Any:
        # requests reads the proxy variables (and netrc, the CA bundle) again at every request
        # of a session that trusts the environment; the proxies for our one URL are read here
        # (NO_PROXY applied), and the CA bundle above
        session = api._store["session"]
        session.proxies.update(requests.utils.get_environ_proxies(self.url))
        session.trust_env = False
        return api

    def _count_login(self) -> None:
        self._count()
        with self._count_lock:
            self.login_count += 1

    def _login(self, api: Any) -> None:
        """A fresh ticket from the password (also replaces a revoked or expired one)."""
        self._count_login()
        try:
            api._backend.auth._get_new_tokens(password=self._password)
        except Exception as exc:
            raise classify_exception(exc, method="POST", path="/access/ticket") from exc

    def _relogin(self, stale_ticket: str | None) -> None:
        with self._auth_lock:
            api = self._api
            if api is None:
                return
            if api._backend.auth.pve_auth_ticket != stale_ticket:
                return  # another thread already logged in again
            self._login(api)

    def _backoff_delay(self, attempt: int) -> float:
        base, cap = self._backoff
        return float(min(cap, base * 2**attempt) * random.uniform(0.5, 1.0))

    def request(self, method: Method, path: str, params: Mapping[str, object] | None = None) -> Any:
        """Send one API call; returns the answer's ``data``. Raises the classified SDK error.

        ``path`` is below ``/api2/json`` (e.g. ``/nodes/pve1/lxc``), segments already encoded.
        """
        clean = "/" + path.strip("/")
        values = {k: _form_value(v) for k, v in (params or {}).items() if v is not None}
        attempt = 0
        relogged = False
        while True:
            api = self._connect()
            ticket = None if self._token else api._backend.auth.pve_auth_ticket
            self._count()
            try:
                resource = api(clean.lstrip("/"))
                if method == "GET":
                    return resource.get(**values)
                if method == "POST":
                    return resource.post(**values)
                if method == "PUT":
                    return resource.put(**values)
                return resource.delete(**values)
            except Exception as exc:
                error = classify_exception(exc, method=method, path=clean)
                cause: BaseException = exc
            if isinstance(error, AuthenticationError) and not self._token and not relogged:
                relogged = True
                self._relogin(ticket)
                continue
            if method == "GET" and isinstance(error, TransientError) and attempt < self._read_retries:
                time.sleep(self._backoff_delay(attempt))
                attempt += 1
                continue
            raise error from cause

    def get(self, path: str, **params: object) -> Any:
        """GET (retried on transient faults)."""
        return self.request("GET", path, params)

    def post(self, path: str, **params: object) -> Any:
        """POST (never retried: the caller checks whether it took effect)."""
        return self.request("POST", path, params)

    def put(self, path: str, **params: object) -> Any:
        return self.request("PUT", path, params)

    def delete(self, path: str, **params: object) -> Any:
        return self.request("DELETE", path, params)

    @staticmethod
    def _one(model: type[_M], data: Any, path: str) -> _M:
        try:
            return model.model_validate(data)
        except ValueError as exc:
            raise ProxmoxError(f"unexpected answer from Proxmox for {path}: {exc}") from exc

    @staticmethod
    def _many(model: type[_M], data: Any, path: str) -> list[_M]:
        try:
            return _list_of(model).validate_python(data or [])
        except ValueError as exc:
            raise ProxmoxError(f"unexpected answer from Proxmox for {path}: {exc}") from exc

    # ------------------------------------------------------------------ typed reads

    def version(self) -> PveVersion:
        return self._one(PveVersion, self.get("/version"), "/version")

    def nodes(self) -> list[PveNode]:
        return self._many(PveNode, self.get("/nodes"), "/nodes")

    def node_status(self, node: str) -> NodeStatus:
        path = f"/nodes/{check_node_name(node)}/status"
        return self._one(NodeStatus, self.get(path), path)

    def cluster_resources(self, *, kind: ResourceKind | None = None) -> list[ClusterResource]:
        """``/cluster/resources``, optionally of one ``type`` (vm, storage, node, sdn)."""
        if kind not in (None, "vm", "storage", "node", "sdn"):
            raise ValidationError(f"resource kind {kind!r} is not one of vm, storage, node, sdn", field="kind")
        return self._many(ClusterResource, self.get("/cluster/resources", type=kind), "/cluster/resources")

    def next_vmid(self) -> int:
        """``/cluster/nextid``: the first free id. It reserves nothing (see VMID allocation)."""
        return check_vmid(int(self.get("/cluster/nextid")))

    def lxc_list(self, node: str) -> list[LxcStatus]:
        path = f"/nodes/{check_node_name(node)}/lxc"
        return self._many(LxcStatus, self.get(path), path)

    def lxc_status(self, node: str, vmid: int) -> LxcStatus:
        path = f"/nodes/{check_node_name(node)}/lxc/{check_vmid(vmid)}/status/current"
        return self._one(LxcStatus, self.get(path), path)

    def lxc_config(self, node: str, vmid: int) -> LxcConfig:
        path = f"/nodes/{check_node_name(node)}/lxc/{check_vmid(vmid)}/config"
        return self._one(LxcConfig, self.get(path), path)

    def lxc_interfaces(self, node: str, vmid: int) -> list[LxcInterface]:
        """The container's interfaces with addresses; empty while it is not running."""
        path = f"/nodes/{check_node_name(node)}/lxc/{check_vmid(vmid)}/interfaces"
        return self._many(LxcInterface, self.get(path), path)

    def storage_list(self, node: str, *, content: str | None = None) -> list[StorageStatus]:
        path = f"/nodes/{check_node_name(node)}/storage"
        return self._many(StorageStatus, self.get(path, content=content), path)

    def storage_content(
        self, node: str, storage: str, *, content: str | None = None, vmid: int | None = None
    ) -> list[StorageVolume]:
        path = f"/nodes/{check_node_name(node)}/storage/{check_storage_id(storage)}/content"
        data = self.get(path, content=content, vmid=None if vmid is None else check_vmid(vmid))
        return self._many(StorageVolume, data, path)

    # ------------------------------------------------------------------ tasks

    @staticmethod
    def task_path(upid: str | Upid, tail: str = "") -> str:
        """``/nodes/{node of the UPID}/tasks/{upid}[/tail]``: a task is read on its own node."""
        parsed = upid if isinstance(upid, Upid) else Upid.parse(upid)
        path = f"/nodes/{parsed.node}/tasks/{_segment(parsed.raw)}"
        return f"{path}/{tail}" if tail else path

    def task_status(self, upid: str | Upid) -> TaskStatus:
        path = self.task_path(upid, "status")
        return self._one(TaskStatus, self.get(path), path)

    def task_log(self, upid: str | Upid, *, start: int = 0, limit: int = 50) -> list[TaskLogLine]:
        """Log lines ``start`` (0-based) to ``start + limit``."""
        if start < 0 or limit < 1:
            raise ValidationError("task log start must be >= 0 and limit >= 1", field="start")
        path = self.task_path(upid, "log")
        return self._many(TaskLogLine, self.get(path, start=start, limit=limit), path)

    def stop_task(self, upid: str | Upid) -> None:
        """Ask Proxmox to stop a running task (``DELETE /nodes/{node}/tasks/{upid}``)."""
        self.delete(self.task_path(upid))
