"""The gRPC channel to an agent: TLS from PEM *contents* (files are read here, on the client),
an optional client certificate, and the bearer token on every call.

TLS is the default. A plaintext channel is used only for a loopback target (127.0.0.1, ::1,
localhost) given no TLS file: the token never crosses a network in clear.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from proximity_sdk._remote._errors import from_rpc_error
from proximity_sdk.errors import ValidationError

__all__ = ["Connection", "read_pem"]

R = TypeVar("R")

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
_MAX_MESSAGE = 16 * 1024 * 1024


def read_pem(path: str | os.PathLike[str], field: str) -> bytes:
    """A PEM file's bytes, read on this machine (the agent never sees the path)."""
    where = Path(path).expanduser()
    try:
        data = where.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"{field} {str(where)!r} does not exist", field=field) from None
    except OSError as exc:
        raise ValidationError(f"{field} {str(where)!r} cannot be read: {exc.strerror or exc}", field=field) from None
    if b"-----BEGIN " not in data:
        raise ValidationError(f"{field} {str(where)!r} holds no PEM data", field=field)
    return data


def _is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0] if not target.startswith("[") else target.split("]", 1)[0] + "]"
    return host in _LOOPBACK or target.startswith("unix:")


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def __repr__(self) -> str:
        return "<bearer token>"  # never the token


class Connection:
    """One channel to one agent, shared by every namespace of a ``RemoteProximity``."""

    def __init__(
        self,
        target: str,
        *,
        token: str,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(target, str) or not target.strip():
            raise ValidationError("target must be the agent's address, host:port", field="target")
        if not isinstance(token, str) or not token.strip():
            raise ValidationError(
                "token is required: an API token of the agent",
                field="token",
                hint="Create one on the agent host with `proximity-agent token create`",
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError("timeout must be a positive number of seconds", field="timeout")
        if (cert_file is None) != (key_file is None):
            raise ValidationError(
                "give cert_file and key_file together (the client certificate and its key)",
                field="cert_file" if cert_file is None else "key_file",
            )
        self.target = target.strip()
        self.timeout = float(timeout)
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
        tls = ca_file is not None or cert_file is not None or not _is_loopback(self.target)
        if tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=read_pem(ca_file, "ca_file") if ca_file is not None else None,
                private_key=read_pem(key_file, "key_file") if key_file is not None else None,
                certificate_chain=read_pem(cert_file, "cert_file") if cert_file is not None else None,
            )
            raw = grpc.secure_channel(self.target, credentials, options=options)
        else:
            raw = grpc.insecure_channel(self.target, options=options)
        self.tls = tls
        self._raw = raw
        self.channel: grpc.Channel = grpc.intercept_channel(raw, _Bearer(token.strip()))

    def call(self, method: Callable[..., R], request: Any) -> R:
        """One unary call with the connection's deadline; a failure raises the SDK's own error."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, target=self.target) from None

    def pages(
        self, method: Callable[..., Any], request: Any, field: str, *, limit: int | None = None, page_size: int = 500
    ) -> Iterator[Any]:
        """Every item of a paginated List call (``field`` names the repeated items)."""
        while True:
            request.page_size = page_size if limit is None else max(1, min(page_size, limit))
            response = self.call(method, request)
            items = getattr(response, field)
            for item in items:
                yield item
                if limit is not None:
                    limit -= 1
                    if limit <= 0:
                        return
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def close(self) -> None:
        self.channel.close()
        self._raw.close()
