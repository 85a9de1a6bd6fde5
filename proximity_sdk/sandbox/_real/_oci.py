"""OCI images for real mode: the pull, the image configuration and the root filesystem, as PVE 9.1.

- :func:`pull`: what pve-storage's ``oci_registry_pull`` (``src/PVE/API2/Storage/Status.pm``) runs
  in its task: ``skopeo copy docker://<reference> oci-archive:<template dir>/<file>.tmp.<pid>``, then
  a rename to ``<file>``. PVE passes no TLS option: skopeo reads the node's
  ``/etc/containers/registries.conf``. Here a registry the sandbox is told to trust as insecure
  (plain HTTP) gets ``--src-tls-verify=false``, which is what ``insecure = true`` there does.
- :func:`image_config`: the image configuration (``config`` of the manifest's config blob) read
  from the archive; what ``PVE::RS::OCI::parse_and_extract_image`` hands to ``restore_oci_archive``.
- :func:`unpack`: the layers applied into a root filesystem with ``umoci raw unpack`` (PVE's own
  extraction is in Rust, in the user namespace of the container).
- :func:`is_oci_archive`: pve-container's ``archive_is_oci_format`` test: a tar holding
  ``oci-layout``, ``index.json`` and ``blobs/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["OciError", "image_config", "is_oci_archive", "missing", "pull", "registry_of", "unpack"]


class OciError(Exception):
    """An OCI step failed; the message says which and why."""


def missing() -> list[str]:
    """The OCI tools this machine lacks, each with its Debian package."""
    need = {"skopeo": "skopeo", "umoci": "umoci"}
    return [f"{tool} (apt-get install {package})" for tool, package in need.items() if shutil.which(tool) is None]


def _run(argv: list[str], *, timeout: float = 600) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OciError(f"{argv[0]} did not end within {timeout:.0f} s") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise OciError(f"command '{' '.join(argv)}' failed: exit code {result.returncode}: {output}")


def registry_of(reference: str) -> str:
    """The registry part of a reference (``host[:port]``), ``docker.io`` when it names none."""
    first, sep, _ = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def pull(reference: str, target: Path, *, insecure: bool) -> None:
    """``skopeo copy`` of ``reference`` into the OCI archive ``target`` (through a temporary file,
    renamed when complete, as PVE does)."""
    absent = missing()
    if absent:
        raise OciError("Install 'skopeo' to pull OCI images from registries: missing " + ", ".join(absent))
    partial = target.with_name(f"{target.name}.tmp.{os.getpid()}")
    argv = [
        "skopeo",
        "copy",
        *(["--src-tls-verify=false"] if insecure else []),
        f"docker://{reference}",
        f"oci-archive:{partial}",
    ]
    try:
        _run(argv)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def is_oci_archive(path: Path) -> bool:
    """A tar with ``oci-layout``, ``index.json`` and ``blobs/`` (pve-container ``archive_is_oci_format``)."""
    if not path.name.endswith(".tar") or not path.is_file():
        return False
    try:
        with tarfile.open(path) as archive:
            names = {n.removeprefix("./").rstrip("/") for n in archive.getnames()}
    except (tarfile.TarError, OSError):
        return False
    return {"oci-layout", "index.json", "blobs"} <= names or (
        {"oci-layout", "index.json"} <= names and any(n.startswith("blobs/") for n in names)
    )


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    for candidate in (name, f"./{name}"):
        try:
            handle = archive.extractfile(candidate)
        except KeyError:
            continue
        if handle is not None:
            return handle.read()
    raise OciError(f"the OCI archive has no {name}")


def _blob(archive: tarfile.TarFile, digest: str) -> dict[str, Any]:
    algorithm, _, value = digest.partition(":")
    data: dict[str, Any] = json.loads(_member(archive, f"blobs/{algorithm}/{value}"))
    return data


def image_config(path: Path) -> dict[str, Any]:
    """The image's runtime configuration (``Entrypoint``, ``Cmd``, ``Env``, ``StopSignal``, ...)."""
    try:
        with tarfile.open(path) as archive:
            index = json.loads(_member(archive, "index.json"))
            manifests = index.get("manifests") or []
            if not manifests:
                raise OciError(f"the OCI archive {path.name} lists no manifest")
            manifest = _blob(archive, manifests[0]["digest"])
            if "manifests" in manifest:  # an image index: the first manifest (this node is amd64)
                manifest = _blob(archive, manifest["manifests"][0]["digest"])
            config = _blob(archive, manifest["config"]["digest"])
    except (tarfile.TarError, OSError, KeyError, ValueError) as exc:
        raise OciError(f"unable to read the image configuration of {path.name}: {exc}") from exc
    found: dict[str, Any] = config.get("config") or {}
    return found


def unpack(archive: Path, rootfs: Path, work: Path) -> None:
    """The image's layers into ``rootfs`` (which must not exist), through the layout unpacked in ``work``."""
    absent = missing()
    if absent:
        raise OciError("creating a container from an OCI image needs " + ", ".join(absent))
    layout = work / "layout"
    shutil.rmtree(layout, ignore_errors=True)
    layout.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(layout, filter="data")
        # skopeo's oci-archive names no tag; umoci needs one to pick the manifest
        index_path = layout / "index.json"
        index = json.loads(index_path.read_text())
        manifests = index.get("manifests") or []
        if not manifests:
            raise OciError(f"the OCI archive {archive.name} lists no manifest")
        manifests[0].setdefault("annotations", {})["org.opencontainers.image.ref.name"] = "pve"
        index["manifests"] = manifests[:1]
        index_path.write_text(json.dumps(index))
        _run(["umoci", "raw", "unpack", "--image", f"{layout}:pve", str(rootfs)])
    finally:
        shutil.rmtree(layout, ignore_errors=True)
