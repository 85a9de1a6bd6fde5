"""OS templates for new containers: use the one on the storage, or download it through ``aplinfo``.

A template is named either exactly (``debian-12-standard_12.7-1_amd64.tar.zst``) or by its
package (``debian-12-standard``) or OS (``debian-12``, system templates only), or by family
(``alpine``, ``debian``, ``ubuntu``; ``auto``: Alpine, else Debian). A package or OS name is
satisfied by any version already on the storage (no download of a newer one behind the user's
back: the version is whatever the storage holds); when none is there, the newest version in the
node's appliance index is downloaded. A family takes its newest release among the node's index
and the templates already on the storage (never a pinned release: indexes drop releases past
their end of life), and that release's newest version.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from proximity_sdk.errors import NotFoundError, ProxmoxError, ValidationError
from proximity_sdk.proxmox.client import ProxmoxClient
from proximity_sdk.proxmox.progress import Emit, emit_to, task_log_forwarder
from proximity_sdk.proxmox.tasks import wait_task
from proximity_sdk.proxmox.validate import check_node_name, check_storage_id

__all__ = [
    "AUTO",
    "Appliance",
    "ensure_template",
    "family_of",
    "find_appliance",
    "list_appliances",
    "pick_family",
    "template_volid",
]

AUTO = "auto"
# what ``auto`` means: the first family the node offers
_AUTO_FAMILIES = ("alpine", "debian")
_FAMILY = re.compile(r"^[a-z][a-z]*$")
# <family>-<release>-<flavour>: alpine-3.22-default, debian-13-standard, ubuntu-24.04-standard
_RELEASE = re.compile(r"^(?P<family>[a-z][a-z0-9]*?)-(?P<release>\d[\d.]*)(-|$)")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,254}$")
_FILE = re.compile(r"\.tar(\.(gz|xz|zst|bz2))?$")
# <package>_<version>_<arch>.tar.<ext>, as PVE's appliance index names its templates
_PARTS = re.compile(r"^(?P<package>[^_]+)_(?P<version>[^_]+)_[^_]+$")


class Appliance(BaseModel):
    """One entry of ``GET /nodes/{node}/aplinfo``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    template: str
    package: str = ""
    os: str = ""
    version: str = ""
    section: str = ""
    type: str = ""
    headline: str = ""


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # natural order: 12.10 after 12.9, 20240908 after 20240101
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", version))


def _split(file_name: str) -> tuple[str, str]:
    """(package, version) of a template file name; ("", "") when it is not in PVE's form."""
    stem = _FILE.sub("", file_name)
    found = _PARTS.match(stem)
    return (found.group("package"), found.group("version")) if found else ("", "")


def _newest(names: list[str]) -> str:
    return max(names, key=lambda n: (_version_key(_split(n)[1]), n))


def family_of(package: str) -> tuple[str, str]:
    """(family, release) of a package name (``debian-13-standard`` -> ``("debian", "13")``)."""
    found = _RELEASE.match(package)
    return (found.group("family"), found.group("release")) if found else ("", "")


def pick_family(family: str, appliances: list[Appliance], present: list[str]) -> str | None:
    """The template (file name) for ``family``: its newest release among the system templates of the
    index and the files already present; of that release, a present file first (no download), else
    the index's newest version. None when neither has the family."""
    candidates: dict[str, tuple[str, bool]] = {}  # file -> (package, present)
    for a in appliances:
        package = a.package or _split(a.template)[0]
        if a.section in ("system", "") and family_of(package)[0] == family:
            candidates[a.template] = (package, False)
    for name in present:
        package = _split(name)[0]
        if family_of(package)[0] == family:
            candidates[name] = (package, True)
    if not candidates:
        return None
    newest_release = max(_version_key(family_of(p)[1]) for p, _ in candidates.values())
    of_release = {n: c for n, c in candidates.items() if _version_key(family_of(c[0])[1]) == newest_release}
    local = [n for n, (_, here) in of_release.items() if here]
    return _newest(local) if local else _newest(list(of_release))


def template_volid(storage: str, template: str) -> str:
    """``<storage>:vztmpl/<template file>``."""
    return f"{check_storage_id(storage)}:vztmpl/{_check_name(template)}"


def _check_name(template: object) -> str:
    if not isinstance(template, str) or not _NAME.match(template):
        raise ValidationError(
            f"template {template!r} is not a template name",
            field="template",
            hint="Give a file name (debian-12-standard_12.7-1_amd64.tar.zst), a package "
            "(debian-12-standard) or an OS (debian-12)",
        )
    return template


def list_appliances(client: ProxmoxClient, node: str) -> list[Appliance]:
    """The node's appliance index (what ``pveam available`` lists); entries without a template are dropped."""
    path = f"/nodes/{check_node_name(node)}/aplinfo"
    data = client.get(path) or []
    if not isinstance(data, list):
        raise ProxmoxError(f"unexpected answer from Proxmox for {path}: not a list")
    try:
        items = TypeAdapter(list[dict[str, object]]).validate_python(data)
        return [Appliance.model_validate(i) for i in items if i.get("template")]
    except PydanticValidationError as exc:
        raise ProxmoxError(f"unexpected answer from Proxmox for {path}: {exc}") from exc


def find_appliance(appliances: list[Appliance], template: str) -> Appliance | None:
    """The entry for an exact file name, else the newest version of a package, else the newest
    system template of an OS."""
    exact = [a for a in appliances if a.template == template]
    if exact:
        return exact[0]
    matches = [a for a in appliances if a.package == template]
    if not matches:
        matches = [a for a in appliances if a.os == template and a.section == "system"]
    if not matches:
        return None
    return max(matches, key=lambda a: (_version_key(a.version or _split(a.template)[1]), a.template))


def _present(client: ProxmoxClient, node: str, storage: str) -> dict[str, str]:
    prefix = f"{storage}:vztmpl/"
    volumes = client.storage_content(node, storage, content="vztmpl")
    return {v.volid[len(prefix) :]: v.volid for v in volumes if v.volid.startswith(prefix)}


def _local_match(present: dict[str, str], package: str) -> str | None:
    names = [n for n in present if _split(n)[0] == package]
    return present[_newest(names)] if names else None


def ensure_template(
    client: ProxmoxClient,
    node: str,
    *,
    storage: str,
    template: str,
    emit: Emit | None = None,
    timeout: float = 1800.0,
) -> str:
    """The volume id of the template on ``storage`` of ``node``, downloading it first if absent.

    Raises :class:`NotFoundError` when neither the storage nor the appliance index has it, and
    :class:`ValidationError` when the storage cannot hold templates."""
    check_node_name(node)
    check_storage_id(storage)
    _check_name(template)
    present = _present(client, node, storage)
    if template == AUTO or _FAMILY.match(template):
        template = _resolve_family(client, node, storage, template, present)
        emit_to(emit, f"template {template} chosen: the newest release of its family on node {node}")
        if template in present:
            return present[template]
    exact_file = bool(_FILE.search(template))
    if exact_file and template in present:
        return present[template]
    if not exact_file and (found := _local_match(present, template)):
        return found
    appliances = list_appliances(client, node)
    entry = find_appliance(appliances, template)
    if entry is None or (exact_file and entry.template != template):
        known = sorted({a.package or a.template for a in appliances})
        shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise NotFoundError(
            f"no template {template!r} on {storage} of node {node} nor in its appliance index",
            hint=f"Known packages: {shown or 'none (run `pveam update` on the node)'}",
        )
    if entry.template in present:
        return present[entry.template]
    if entry.package and (found := _local_match(present, entry.package)):
        return found
    _check_holds_templates(client, node, storage)
    emit_to(emit, f"downloading template {entry.template} to {storage} on node {node}")
    upid = client.post(f"/nodes/{node}/aplinfo", storage=storage, template=entry.template)
    wait_task(client, str(upid), timeout=timeout, on_log=task_log_forwarder(emit))
    after = _present(client, node, storage)
    if entry.template not in after:
        raise ProxmoxError(
            f"the download of {entry.template} to {storage} on node {node} finished, "
            "but the template is not in the storage",
            hint="Look at the download task's log on the node; the storage may be full or read-only",
        )
    emit_to(emit, f"template {entry.template} is ready")
    return after[entry.template]


def _resolve_family(client: ProxmoxClient, node: str, storage: str, family: str, present: dict[str, str]) -> str:
    appliances = list_appliances(client, node)
    families = _AUTO_FAMILIES if family == AUTO else (family,)
    for name in families:
        chosen = pick_family(name, appliances, list(present))
        if chosen is not None:
            return chosen
    offered = sorted({family_of(a.package or _split(a.template)[0])[0] for a in appliances} - {""})
    known = sorted({a.package or a.template for a in appliances})
    raise NotFoundError(
        f"no {' or '.join(families)} template on {storage} of node {node} nor in its appliance index",
        hint=f"The index offers the families {', '.join(offered) or 'none'} "
        f"({', '.join(known[:12]) or 'none: run `pveam update` on the node'}); "
        "set default_template to one of them or to an exact template",
    )


def _check_holds_templates(client: ProxmoxClient, node: str, storage: str) -> None:
    fit = client.storage_list(node, content="vztmpl")
    if not any(s.storage == storage for s in fit):
        names = ", ".join(sorted(s.storage for s in fit)) or "none"
        raise ValidationError(
            f"storage {storage!r} on node {node} cannot hold container templates",
            field="storage",
            hint=f"Use a storage with content type 'vztmpl' (on {node}: {names}); set template_storage in settings",
        )
