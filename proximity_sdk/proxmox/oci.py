"""Native OCI application containers (PVE >= 9.1): version detection, image pulls, runtime environment.

PVE 9.1 pulls an OCI image into a storage (``POST /nodes/{node}/storage/{storage}/oci-registry-pull``,
a task, stored as ``<storage>:vztmpl/<file name>.tar``) and creates a container straight from it.
Nothing here uses the node shell: an application container has no shell to reach.

- :func:`oci_support` reads ``GET /nodes/{node}/version``; a version it cannot parse means
  "cannot tell", which counts as not OCI-capable (the reason says so).
- ``check_reference`` (``models/_requests.py``, shared with the remote client) applies the
  schema's own pattern for ``reference`` (a tag is required).
- :func:`pull_image` reuses the file of an earlier pull of the same reference (PVE refuses to
  overwrite it), else pulls and waits for the task. File names are an injective encoding of the
  reference (``docker.io/library/nginx:1.27`` and ``docker.io/library_nginx:1.27`` never share
  one); a floating tag (``latest``, ``main``, any tag without a digit) gets the day (UTC) in its
  name, so it is pulled again at most once a day instead of never.
- :func:`env_param` builds the ``env`` value: ``NAME=value`` entries separated by NUL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from proximity_sdk.errors import ProximityError, ProxmoxError, ValidationError
from proximity_sdk.models._requests import check_reference
from proximity_sdk.proxmox._lxc import lxc_path
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, emit_to, task_log_forwarder
from proximity_sdk.proxmox.tasks import wait_task
from proximity_sdk.proxmox.validate import check_node_name, check_storage_id

__all__ = [
    "OCI_MIN_VERSION",
    "OciSupport",
    "check_env",
    "configure_runtime",
    "env_param",
    "floating_tag",
    "image_template_volid",
    "oci_support",
    "parse_version",
    "pull_image",
    "require_oci",
    "template_file",
]

#: the first PVE release that creates containers from OCI images
OCI_MIN_VERSION = (9, 1)

# env names and values as the schema's `env` pattern takes them (\w+ = [^\x00-\x08\x10-\x1F\x7F]*);
# every control character is refused here (a line break would also break the container's config)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_BAD_VALUE = re.compile(r"[\x00-\x1f\x7f]")
_VERSION = re.compile(r"^\s*(?:pve-manager/)?(\d+)\.(\d+)(?:[.-](\d+))?")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_FILE = 200
_OVERRIDE = re.compile(r"refusing to override existing file")


_FLOATING_TAGS = frozenset({"latest", "stable", "main", "master", "release", "lts", "edge", "nightly"})


def floating_tag(reference: str) -> bool:
    """Whether the reference's tag moves (``latest``, ``main``, any tag without a digit)."""
    tag = reference.rsplit("/", 1)[-1].partition(":")[2]
    return not tag or tag in _FLOATING_TAGS or not re.search(r"\d", tag)


def _encode(reference: str) -> str:
    # Injective in PVE's file alphabet: "_" -> "__", ":" -> "_.", "/" -> "_". It decodes one way only:
    # after "/" the grammar has a letter or digit (never "_" or "."), and a ":" is followed by digits
    # (a port) or a tag, which starts with a word character, never ".".
    return reference.replace("_", "__").replace(":", "_.").replace("/", "_")


def template_file(reference: str, *, now: datetime | None = None) -> str:
    """The file name (without ``.tar``) Proximity pulls ``reference`` as: in PVE's normalized
    alphabet (letters, digits, ``_.-``), so PVE's normalization leaves it unchanged; distinct for
    distinct references; a floating tag's name carries the day (``now``, default today, UTC):
    a new day, a new pull."""
    name = _UNSAFE_FILE_CHARS.sub("-", _encode(reference))
    if floating_tag(reference):
        # "_-" never occurs in an encoded reference: the day cannot be mistaken for part of it
        name += f"_-{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%d}"
    if len(name) > _MAX_FILE:
        digest = hashlib.sha256(name.encode()).hexdigest()[:24]
        name = f"{name[: _MAX_FILE - 25]}-{digest}"
    return name


def image_template_volid(storage: str, reference: str, *, now: datetime | None = None) -> str:
    return f"{storage}:vztmpl/{template_file(reference, now=now)}.tar"


def parse_version(text: object) -> tuple[int, int, int] | None:
    """``"9.1.2"`` (or ``pve-manager/9.1.2/...``) -> (9, 1, 2); None when it is no version."""
    if not isinstance(text, str):
        return None
    found = _VERSION.match(text)
    if found is None:
        return None
    return int(found[1]), int(found[2]), int(found[3] or 0)


@dataclass(frozen=True)
class OciSupport:
    """Whether a node creates containers from OCI images; ``reason`` says why (for an event)."""

    node: str
    capable: bool
    version: str | None
    reason: str


def oci_support(client: ProxmoxClient, node: str) -> OciSupport:
    """Ask the node its PVE version (``GET /nodes/{node}/version``)."""
    check_node_name(node)
    answer = client.get(f"/nodes/{node}/version") or {}
    raw = answer.get("version") if isinstance(answer, dict) else None
    parsed = parse_version(raw)
    minimum = ".".join(str(p) for p in OCI_MIN_VERSION)
    if parsed is None:
        return OciSupport(
            node,
            False,
            None,
            f"node {node} reports PVE version {raw!r}, which cannot be read: "
            f"cannot tell whether it runs PVE >= {minimum}, so it is taken as not OCI-capable",
        )
    shown = str(raw)
    if parsed[:2] < OCI_MIN_VERSION:
        return OciSupport(
            node, False, shown, f"node {node} runs PVE {shown}; native OCI containers need PVE >= {minimum}"
        )
    return OciSupport(node, True, shown, f"node {node} runs PVE {shown}: native OCI containers are supported")


def require_oci(client: ProxmoxClient, node: str) -> OciSupport:
    """``oci_support``, raising a ValidationError (field ``strategy``) when the node is not capable."""
    support = oci_support(client, node)
    if not support.capable:
        raise ValidationError(
            f'strategy "oci" is not possible: {support.reason}',
            field="strategy",
            hint='Use strategy="auto" or "compose", or another node (PVE >= 9.1)',
        )
    return support


def check_env(env: Mapping[str, str], *, field: str = "environment") -> dict[str, str]:
    """Names and values the ``env`` parameter can carry; a ValidationError names the variable (never its value)."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValidationError(
                f"environment variable name {name!r} is not valid",
                field=field,
                hint="Use letters, digits and '_', not starting with a digit",
            )
        if not isinstance(value, str):
            raise ValidationError(
                f"environment {name}: expected a string, got {type(value).__name__}", field=f"{field}.{name}"
            )
        if _ENV_BAD_VALUE.search(value):
            raise ValidationError(
                f"environment {name}: control characters (line breaks, tabs, NUL) cannot be passed to an OCI container",
                field=f"{field}.{name}",
            )
        out[name] = value
    return out


def env_param(env: Mapping[str, str]) -> str:
    """The ``env`` parameter: ``NAME=value`` entries separated by NUL. Holds secrets: never log it."""
    return "\0".join(f"{name}={value}" for name, value in check_env(env).items())


def _split_env(value: object) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, str):
        for item in value.split("\0"):
            name, eq, rest = item.partition("=")
            if eq and name:
                out[name] = rest
    return out


def pull_image(
    client: ProxmoxClient,
    node: str,
    *,
    storage: str,
    reference: str,
    emit: Emit | None = None,
    timeout: float = 3600.0,
    now: datetime | None = None,
) -> str:
    """The template volume of ``reference`` on ``storage`` of ``node``, pulled first when absent.

    A file of an earlier pull of the same reference is used as is: PVE refuses to overwrite it, and
    deleting a template that other containers came from is not ours to do."""
    check_node_name(node)
    check_storage_id(storage)
    check_reference(reference)
    volid = image_template_volid(storage, reference, now=now)
    present = {v.volid for v in client.storage_content(node, storage, content="vztmpl")}
    if volid in present:
        emit_to(emit, f"image {reference} already pulled as {volid}")
        return volid
    emit_to(emit, f"pulling image {reference} to {storage} on node {node}")
    try:
        upid = client.post(
            f"/nodes/{node}/storage/{storage}/oci-registry-pull",
            reference=reference,
            filename=volid.rsplit("/", 1)[-1].removesuffix(".tar"),
        )
    except ProximityError as err:
        # another pull of the same reference finished since the listing above (PVE checks the file
        # before it forks the worker: "refusing to override existing file '<name>.tar'")
        if not _OVERRIDE.search(str(err)):
            raise
        emit_to(emit, f"image {reference} was pulled meanwhile as {volid}")
        return volid
    wait_task(client, str(upid), timeout=timeout, on_log=task_log_forwarder(emit))
    if volid not in {v.volid for v in client.storage_content(node, storage, content="vztmpl")}:
        raise ProxmoxError(
            f"the pull of {reference} on node {node} finished, but {volid} is not in the storage",
            hint="Look at the oci-registry-pull task's log on the node (skopeo installed? space?)",
        )
    emit_to(emit, f"image {reference} is ready as {volid}")
    return volid


def configure_runtime(
    client: ProxmoxClient, node: str, vmid: int, *, env: Mapping[str, str], net0: str | None = None
) -> int:
    """Set the container's runtime environment: the image's own variables (PVE copies them into
    the config at create, e.g. ``PATH``) overlaid with ``env``, in one ``PUT .../config``; with
    ``net0``, the interface too (DHCP by the host: ``host-managed=1``). Returns how many
    variables were set. The values are secrets: never logged."""
    current = client.get(lxc_path(node, vmid, "config")) or {}
    merged = {**_split_env(current.get("env") if isinstance(current, dict) else None), **check_env(env)}
    params: dict[str, object] = {}
    if merged:
        params["env"] = env_param(merged)
    if net0:
        params["net0"] = net0
    if params:
        client.put(lxc_path(node, vmid, "config"), **params)
    return len(merged)
