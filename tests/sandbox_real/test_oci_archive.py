"""Real mode's reading of OCI archives (no real node needed): pve-container's archive test, the
image configuration from the manifest's config blob, the registry a reference names."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from proximity_sdk.sandbox._oci import OciImageConfig
from proximity_sdk.sandbox._real import _lxc, _oci


def _archive(path: Path, config: dict[str, Any], *, index_of_index: bool = False) -> Path:
    blobs: dict[str, bytes] = {}

    def blob(data: dict[str, Any]) -> str:
        raw = json.dumps(data).encode()
        digest = hashlib.sha256(raw).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = raw
        return f"sha256:{digest}"

    manifest = blob({"schemaVersion": 2, "config": {"digest": blob({"config": config}), "size": 1}, "layers": []})
    if index_of_index:
        manifest = blob({"schemaVersion": 2, "manifests": [{"digest": manifest}]})
    members = {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [{"digest": manifest}]}).encode(),
        **blobs,
    }
    with tarfile.open(path, "w") as tar:
        directory = tarfile.TarInfo("blobs")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_image_configuration_is_read_from_the_archive(tmp_path: Path) -> None:
    wanted = {
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": ["PATH=/usr/bin", "NGINX_VERSION=1.27"],
        "StopSignal": "SIGQUIT",
    }
    archive = _archive(tmp_path / "nginx_1.27.tar", wanted)
    assert _oci.is_oci_archive(archive)
    assert _oci.image_config(archive) == wanted
    nested = _archive(tmp_path / "multi.tar", {"Cmd": ["/app"]}, index_of_index=True)
    assert _oci.image_config(nested) == {"Cmd": ["/app"]}


def test_a_template_is_not_an_oci_archive(tmp_path: Path) -> None:
    plain = tmp_path / "debian.tar"
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("./etc/hostname")
        tar.addfile(info, io.BytesIO(b""))
    assert not _oci.is_oci_archive(plain)
    assert not _oci.is_oci_archive(tmp_path / "absent.tar")
    with pytest.raises(_oci.OciError, match=r"has no index\.json"):
        _oci.image_config(plain)


@pytest.mark.parametrize(
    ("reference", "registry"),
    [
        ("10.0.3.1:5000/proximity-test/web:1", "10.0.3.1:5000"),
        ("ghcr.io/org/app:2", "ghcr.io"),
        ("localhost/app:1", "localhost"),
        ("library/nginx:1.27", "docker.io"),
        ("nginx:1.27", "docker.io"),
    ],
)
def test_the_registry_of_a_reference(reference: str, registry: str) -> None:
    assert _oci.registry_of(reference) == registry


@pytest.mark.parametrize(
    ("init_cmd", "argv"),
    [
        ("/docker-entrypoint.sh nginx -g 'daemon off;'", ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]),
        ("/bin/sh -c 'echo web broken >&2; exit 3'", ["/bin/sh", "-c", "echo web broken >&2; exit 3"]),
        ("  a\t\"b c\"  '' d ", ["a", "b c", "", "d"]),
        ("a'b c\"", ["a'b", 'c"']),  # a quote inside a word is a plain character
        ("'ab'cd", ["ab", "cd"]),  # a closing quote ends the word
        ("x 'unclosed", ["x"]),  # an unclosed quoted word is dropped
        ("", []),
    ],
)
def test_lxc_init_cmd_is_split_as_lxc_6_splits_it(init_cmd: str, argv: list[str]) -> None:
    # LXC 6 do_lxcapi_start: lxc_string_split_quoted(conf->init_cmd) (string_utils.c)
    assert _lxc.split_init_cmd(init_cmd) == argv


def test_an_image_argument_with_a_quote_reaches_the_program_mangled_as_on_pve() -> None:
    # PVE's cmd2string escapes a quote as '\'', which LXC's split does not undo: the shell gets
    # "echo " as its script and the rest as $0, $1 ... (what a 9.1 node runs for such an image)
    entrypoint = OciImageConfig(entrypoint=("/bin/sh", "-c", "echo 'a b' >&2; exit 3")).init_command()
    assert entrypoint is not None
    assert _lxc.split_init_cmd(entrypoint) == ["/bin/sh", "-c", "echo ", "\\''a", "b'\\''", ">&2;", "exit", "3'"]
    # without a quote inside an argument it arrives whole
    plain = OciImageConfig(entrypoint=("/bin/sh", "-c", "echo a b >&2; exit 3")).init_command()
    assert plain is not None and _lxc.split_init_cmd(plain) == ["/bin/sh", "-c", "echo a b >&2; exit 3"]
