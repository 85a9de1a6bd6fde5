"""Read a template list from a file or URL; URLs are cached on disk and revalidated (ETag, max-age)."""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from proximity_sdk.errors import UnreachableError, ValidationError

__all__ = ["fetch_text"]

log = logging.getLogger(__name__)
_MAX_BYTES = 16 * 1024 * 1024


def fetch_text(location: str, *, cache_dir: Path, max_age: float, timeout: float) -> str:
    """The text at ``location`` (a path or ``http(s)://`` URL)."""
    if location.startswith(("http://", "https://")):
        return _fetch_url(location, cache_dir=cache_dir, max_age=max_age, timeout=timeout).decode("utf-8")
    if "://" in location:
        raise ValidationError(
            f"unsupported location {location!r}",
            field="location",
            hint="Give a file path or an http(s):// URL",
        )
    return Path(location).read_text(encoding="utf-8")


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


def _fetch_url(url: str, *, cache_dir: Path, max_age: float, timeout: float) -> bytes:
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
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
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
    except (urllib.error.URLError, OSError) as exc:
        failure = str(getattr(exc, "reason", exc))
    if cached is not None:
        log.warning("portainer templates: %s failed (%s); using the cached copy", url, failure)
        return cached
    raise UnreachableError(
        f"cannot fetch {url}: {failure}", hint="Check the URL and the network; nothing is cached yet"
    )


def _store_meta(
    meta_path: Path, headers: object, age: float, *, previous: dict[str, object] | None = None
) -> None:
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
