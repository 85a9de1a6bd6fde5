"""Read a template list from a file or URL; URLs are cached on disk and revalidated (ETag, max-age).

Everything read here is untrusted input:

- only ``http(s)://`` URLs, and a local file only where the admin configured one
  (``PROXIMITY_PORTAINER_TEMPLATES``; ``allow_local``): a template's ``repository.url`` never
  reads the agent's files;
- every read is capped at ``MAX_BYTES`` (a local path must be a regular file: ``/dev/zero`` is not);
- a URL whose host is (or resolves to, or redirects to) a loopback, private, link-local or other
  non-public address is refused unless ``allow_private`` (``PROXIMITY_PORTAINER_ALLOW_PRIVATE=1``).
  The address checked is the one the socket connected to, so a DNS answer that changes between a
  check and the connection cannot slip through.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from proximity_sdk.errors import UnreachableError, ValidationError

__all__ = ["MAX_BYTES", "PrivateAddressError", "fetch_text"]

log = logging.getLogger(__name__)
MAX_BYTES = 16 * 1024 * 1024
_MAX_BYTES = MAX_BYTES


class PrivateAddressError(ValidationError):
    """A URL that leads to a non-public address (loopback, private, link-local, ...)."""


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{what} is not UTF-8 text", field="location") from None  # no content echoed


def fetch_text(
    location: str,
    *,
    cache_dir: Path,
    max_age: float,
    timeout: float,
    allow_local: bool = False,
    allow_private: bool = False,
) -> str:
    """The text at ``location``: an ``http(s)://`` URL, or a local path when ``allow_local``."""
    if location.startswith(("http://", "https://")):
        body = _fetch_url(location, cache_dir=cache_dir, max_age=max_age, timeout=timeout, allow_private=allow_private)
        return _decode(body, location)
    if "://" in location or not allow_local:
        raise ValidationError(
            f"unsupported location {location[:200]!r}: only http(s):// URLs are read",
            field="location",
            hint="A local template file can only be configured by the admin (PROXIMITY_PORTAINER_TEMPLATES)",
        )
    return _decode(_read_local(Path(location)), location)


def _read_local(path: Path) -> bytes:
    with path.open("rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ValidationError(f"{path} is not a regular file", field="location")
        data = fh.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise ValidationError(f"{path}: larger than {_MAX_BYTES} bytes", field="location")
    return data


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check_peer(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    peer = sock.getpeername()[0] if sock is not None else None
    if peer is None or not _public(str(peer)):
        conn.close()
        raise PrivateAddressError(
            f"{conn.host} is at a non-public address ({peer}): refused",
            field="location",
            hint="Templates on an internal server need PROXIMITY_PORTAINER_ALLOW_PRIVATE=1 (set by the admin)",
        )


class _PublicHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise ValidationError(f"{req.full_url} redirects to a non-http(s) URL: refused", field="location")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(allow_private: bool) -> urllib.request.OpenerDirector:
    # no proxy: the address checked must be the server's, not a proxy's
    handlers: list[Any] = [urllib.request.ProxyHandler({}), _Redirects()]
    if not allow_private:
        handlers += [_PublicHTTPHandler(), _PublicHTTPSHandler()]
    return urllib.request.build_opener(*handlers)


def _cache_paths(cache_dir: Path, url: str) -> tuple[Path, Path]:
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    return cache_dir / f"{key}.body", cache_dir / f"{key}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _freshness(headers: object, default: float) -> tuple[float, bool]:
    """(max-age seconds, may be stored) from Cache-Control."""
    get = getattr(headers, "get", None)
    control = (get("Cache-Control") if get else None) or ""
    directives = {d.strip().split("=", 1)[0].lower(): d.strip() for d in control.split(",") if d.strip()}
    if "no-store" in directives:
        return 0.0, False
    if "no-cache" in directives:
        return 0.0, True
    match = re.search(r"max-age\s*=\s*(\d+)", control, re.IGNORECASE)
    return (float(match.group(1)) if match else default), True


def _fetch_url(url: str, *, cache_dir: Path, max_age: float, timeout: float, allow_private: bool) -> bytes:
    body_path, meta_path = _cache_paths(cache_dir, url)
    meta: dict[str, object] = {}
    cached: bytes | None = None
    try:
        meta = json.loads(meta_path.read_text())
        cached = body_path.read_bytes()
    except (OSError, ValueError):
        meta, cached = {}, None
    now = time.time()
    fetched_at = float(meta.get("fetched_at", 0.0))  # type: ignore[arg-type]
    fresh_for = float(meta.get("max_age", 0.0))  # type: ignore[arg-type]
    if cached is not None and now - fetched_at < fresh_for:
        return cached

    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})  # noqa: S310 - scheme checked
    if cached is not None and meta.get("etag"):
        request.add_header("If-None-Match", str(meta["etag"]))
    if cached is not None and meta.get("last_modified"):
        request.add_header("If-Modified-Since", str(meta["last_modified"]))
    try:
        with _opener(allow_private).open(request, timeout=timeout) as response:
            body: bytes = response.read(_MAX_BYTES + 1)
            if len(body) > _MAX_BYTES:
                raise ValidationError(f"{url}: larger than {_MAX_BYTES} bytes", field="location")
            age, storable = _freshness(response.headers, max_age)
            if storable:
                _atomic_write(body_path, body)
                _store_meta(meta_path, response.headers, age)
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and cached is not None:
            age, _ = _freshness(exc.headers, max_age)
            _store_meta(meta_path, exc.headers, age, previous=meta)
            return cached
        failure = f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ValidationError):
            raise exc.reason from None
        failure = str(exc.reason)
    except OSError as exc:
        failure = str(exc)
    if cached is not None:
        log.warning("portainer templates: %s failed (%s); using the cached copy", url, failure)
        return cached
    raise UnreachableError(
        f"cannot fetch {url}: {failure}", hint="Check the URL and the network; nothing is cached yet"
    )


def _store_meta(meta_path: Path, headers: object, age: float, *, previous: dict[str, object] | None = None) -> None:
    get = getattr(headers, "get", lambda _name: None)
    old = previous or {}
    meta = {
        "fetched_at": time.time(),
        "max_age": age,
        "etag": get("ETag") or old.get("etag"),
        "last_modified": get("Last-Modified") or old.get("last_modified"),
        "stored": email.utils.formatdate(usegmt=True),
    }
    _atomic_write(meta_path, json.dumps(meta).encode("utf-8"))
