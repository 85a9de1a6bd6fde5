"""The compose policy: what a catalog entry from an untrusted source may not ask for.

An app's compose project runs with Docker inside its LXC container; with ``unprivileged=False``
that Docker is root on the Proxmox node. A third-party template must therefore not get, for any
service:

- ``privileged`` (anything but false: a ``${VAR}`` could turn into true);
- a host namespace: ``network_mode``/``pid``/``ipc``/``uts``/``userns_mode``/``cgroup`` set to
  ``host``, or joining a container outside the project (``container:...``, also in
  ``volumes_from``);
- ``devices``, ``device_cgroup_rules``, GPU requests (``gpus``, ``deploy.resources.reservations.devices``);
- added capabilities (``cap_add``), or a ``security_opt`` that lifts confinement (``*unconfined``,
  ``label=disable``/``label:disable``, ``no-new-privileges=false``);
- a bind mount whose source is not inside the app's own directory: an absolute or home path, one
  that climbs out with ``..``, one made of variables (``${DATA}`` is whatever the deployer sets),
  the Docker socket anywhere, and the same through a named volume's ``driver_opts`` (a ``local``
  volume with ``device``) or a ``tmpfs``-free ``type: bind`` long syntax;
- the host's network through a top-level network (``name: host`` or ``driver: host``);
- files read from outside the project: ``env_file``, top-level ``configs``/``secrets`` ``file``,
  ``extends.file``, and ``build`` contexts that are absolute or climb out.

``compose_violations(document)`` lists every violation as ``(field, reason)``; the catalog loader
(``catalog/loader.py``) refuses an entry with any, naming source, app and field, unless an admin
marked its source trusted (``trusted_sources``). The policy errs on the side of refusing: a key
whose value it cannot read (a string where a list belongs, ...) is a violation too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["compose_violations"]

_NAMESPACES = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")
_SOCKET = re.compile(r"docker\.sock|/run/docker|/var/run/docker|containerd\.sock|podman\.sock", re.IGNORECASE)
_FALSE = {"false", "no", "off", "0", ""}
_UNCONFINED = re.compile(r"unconfined|label[=:]\s*disable|no-new-privileges[=:]\s*false|systempaths", re.IGNORECASE)


def _truthy(value: Any) -> bool:
    """Whether compose could read ``value`` as true: only an explicit false is safe."""
    if value is None or value is False or value == 0:
        return False
    return not (isinstance(value, str) and value.strip().lower() in _FALSE)


def _outside(path: str) -> str | None:
    """Why a host path is outside the app's directory, or None when it is a path inside it."""
    text = path.strip()
    if _SOCKET.search(text):
        return "the Docker socket gives root on the host"
    if "$" in text:
        return "a path made of variables can point anywhere on the host"
    if not text:
        return "an empty host path"
    if text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", text):
        return "a host path outside the app's own directory"
    parts = re.split(r"[/\\]+", text)
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return "a path that climbs out of the app's own directory"
        elif part not in ("", "."):
            depth += 1
    return None


def _is_path(source: str) -> bool:
    # compose reads a short-syntax source as a host path when it starts like one; else a volume name
    return source.startswith((".", "/", "~", "\\", "$")) or "/" in source or bool(re.match(r"^[A-Za-z]:", source))


def _short_source(spec: str) -> str | None:
    """The host side of a short-syntax volume (``SRC:DST[:MODE]``), or None for an anonymous one."""
    text = spec.strip()
    if re.match(r"^[A-Za-z]:[\\/]", text):  # a Windows drive letter is part of the source
        rest = text[2:]
        head, sep, _ = rest.partition(":")
        return text[:2] + head if sep else None
    head, sep, _ = text.partition(":")
    return head if sep else None


def _check_volume(field: str, volume: Any, named: Mapping[str, Any], out: list[tuple[str, str]]) -> None:
    if isinstance(volume, str):
        if _SOCKET.search(volume):
            out.append((field, "the Docker socket gives root on the host"))
            return
        if "$" in volume.partition(":")[0]:
            # interpolated before it is parsed: "${A}x" may become "/:/hostx"
            out.append((field, "a volume whose source is made of variables can bind any host path"))
            return
        source = _short_source(volume)
        if source is None:
            return
        if _is_path(source):
            why = _outside(source)
            if why:
                out.append((field, f"bind of {source!r}: {why}"))
        elif source not in named:
            # an undeclared name is a volume Docker creates; a declared one is checked with the top level
            return
        return
    if not isinstance(volume, Mapping):
        out.append((field, "a volume must be a string or a mapping"))
        return
    kind = str(volume.get("type", "volume")).strip().lower()
    source = volume.get("source", volume.get("src"))
    if kind in ("bind", "npipe", "cluster"):
        if not isinstance(source, str):
            out.append((field, f"a {kind} mount without a readable source"))
            return
        why = _outside(source) if kind == "bind" else "a host pipe"
        if why:
            out.append((field, f"{kind} of {source!r}: {why}"))
    elif kind not in ("volume", "tmpfs", "image"):
        out.append((field, f"mount type {kind!r} is not allowed"))
    elif isinstance(source, str) and _SOCKET.search(source):
        out.append((field, "the Docker socket gives root on the host"))


def _check_file(field: str, value: Any, out: list[tuple[str, str]]) -> None:
    paths: list[Any]
    if isinstance(value, str):
        paths = [value]
    elif isinstance(value, list):
        paths = [v.get("path") if isinstance(v, Mapping) else v for v in value]
    else:
        out.append((field, "a file reference must be a string or a list"))
        return
    for path in paths:
        if not isinstance(path, str):
            out.append((field, "a file reference must be a string"))
            continue
        why = _outside(path)
        if why:
            out.append((field, f"file {path!r}: {why}"))


def _check_service(name: str, service: Any, named: Mapping[str, Any], out: list[tuple[str, str]]) -> None:
    base = f"docker_compose.services.{name}"
    if not isinstance(service, Mapping):
        out.append((base, "a service must be a mapping"))
        return
    if "privileged" in service and _truthy(service["privileged"]):
        out.append((f"{base}.privileged", "privileged containers are root on the host"))
    for key in _NAMESPACES:
        if key not in service:
            continue
        value = service[key]
        text = str(value).strip().lower() if value is not None else ""
        if text == "host" or text.startswith("container:") or "$" in text:
            out.append((f"{base}.{key}", f"{key}: {value!r} shares a namespace outside the project"))
    for key in ("devices", "device_cgroup_rules", "gpus"):
        if service.get(key):
            out.append((f"{base}.{key}", "host devices are not allowed"))
    reservations = (
        ((service.get("deploy") or {}).get("resources") or {}).get("reservations")
        if isinstance(service.get("deploy"), Mapping)
        else None
    )
    if isinstance(reservations, Mapping) and reservations.get("devices"):
        out.append((f"{base}.deploy.resources.reservations.devices", "host devices are not allowed"))
    if service.get("cap_add"):
        out.append((f"{base}.cap_add", f"added capabilities ({service['cap_add']!r}) are not allowed"))
    security = service.get("security_opt")
    if security:
        options = security if isinstance(security, list) else [security]
        if any(_UNCONFINED.search(str(o)) for o in options):
            out.append((f"{base}.security_opt", "lifting the container's confinement is not allowed"))
    volumes = service.get("volumes")
    if volumes is not None:
        if not isinstance(volumes, list):
            out.append((f"{base}.volumes", "volumes must be a list"))
        else:
            for n, volume in enumerate(volumes):
                _check_volume(f"{base}.volumes.{n}", volume, named, out)
    for n, other in enumerate(service.get("volumes_from") or []):
        if str(other).strip().lower().startswith("container:"):
            out.append((f"{base}.volumes_from.{n}", "volumes of a container outside the project"))
    if "env_file" in service:
        _check_file(f"{base}.env_file", service["env_file"], out)
    extends = service.get("extends")
    if isinstance(extends, Mapping) and "file" in extends:
        _check_file(f"{base}.extends.file", extends["file"], out)
    build = service.get("build")
    context = build.get("context") if isinstance(build, Mapping) else build
    if isinstance(context, str) and "://" not in context and not context.startswith("git@"):
        why = _outside(context)
        if why:
            out.append((f"{base}.build", f"build context {context!r}: {why}"))


def compose_violations(document: Any) -> list[tuple[str, str]]:
    """Every ``(field, reason)`` of ``document`` (a compose mapping) that the policy refuses."""
    out: list[tuple[str, str]] = []
    if not isinstance(document, Mapping):
        return [("docker_compose", "a compose document must be a mapping")]
    raw_volumes = document.get("volumes") or {}
    named: Mapping[str, Any] = raw_volumes if isinstance(raw_volumes, Mapping) else {}
    if not isinstance(raw_volumes, Mapping):
        out.append(("docker_compose.volumes", "volumes must be a mapping"))
    for name, volume in named.items():
        if not isinstance(volume, Mapping):
            continue
        options = volume.get("driver_opts")
        if options is None:
            continue
        if not isinstance(options, Mapping):
            out.append((f"docker_compose.volumes.{name}.driver_opts", "driver options must be a mapping"))
        elif any(str(k).lower() in ("device", "o", "type") for k in options):
            # a local volume with a device is a bind mount of that host path (or a remote mount)
            out.append(
                (
                    f"docker_compose.volumes.{name}.driver_opts",
                    "driver options that mount a host path or device are not allowed",
                )
            )
    raw_networks = document.get("networks") or {}
    if not isinstance(raw_networks, Mapping):
        out.append(("docker_compose.networks", "networks must be a mapping"))
        raw_networks = {}
    for name, network in raw_networks.items():
        if not isinstance(network, Mapping):
            continue
        for key in ("name", "driver"):
            value = str(network.get(key, "")).strip().lower()
            if value == "host" or "$" in value:
                out.append(
                    (
                        f"docker_compose.networks.{name}.{key}",
                        f"{key}: {network.get(key)!r} would put services on the host's network",
                    )
                )
    for top in ("configs", "secrets"):
        entries = document.get(top) or {}
        if not isinstance(entries, Mapping):
            out.append((f"docker_compose.{top}", f"{top} must be a mapping"))
            continue
        for name, entry in entries.items():
            if isinstance(entry, Mapping) and "file" in entry:
                _check_file(f"docker_compose.{top}.{name}.file", entry["file"], out)
    services = document.get("services")
    if isinstance(services, Mapping):
        for name, service in services.items():
            _check_service(str(name), service, named, out)
    return out
