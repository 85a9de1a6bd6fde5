"""Typed for real: what a user's type checker (and editor) sees. mypy runs on a snippet as a user
would write it; ``assert_type`` fails the check when a result is ``Any`` or the wrong model."""

from __future__ import annotations

from pathlib import Path

import proximity_sdk

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
from typing import Any, assert_type

from proximity_sdk import App, Backup, OperationHandle, OperationHandleAPI, Proximity, ProximityAPI


def local(px: Proximity) -> None:
    assert_type(px.apps.deploy("gitea", hostname="git-1").wait(), App)
    assert_type(px.apps.deploy_image("nginx:1.27", hostname="web", ports=[80]).wait(), App)
    assert_type(px.apps.clone("id", hostname="git-2").wait(), App)
    assert_type(px.apps.start("id").wait(), App)
    assert_type(px.apps.update("id").wait(), App)
    assert_type(px.apps.delete("id").wait(), None)
    assert_type(px.backups.create("id").wait(), Backup)
    assert_type(px.backups.restore("id").wait(), App)
    handle: OperationHandle[App] = px.apps.stop("id")
    assert_type(handle.wait(timeout=5), App)
    assert_type(px.operations.handle("id").wait(), Any)  # any kind: the caller knows


def remote() -> None:
    with Proximity.connect("agent:50051", token="pxt_x") as px:
        assert_type(px, ProximityAPI)  # the contract, not the private remote class
        assert_type(px.apps.deploy("gitea", hostname="git-1").wait(), App)
        assert_type(px.apps.clone("id", hostname="git-2").wait(), App)
        assert_type(px.backups.create("id").wait(), Backup)
        assert_type(px.backups.restore("id").wait(), App)
        assert_type(px.apps.delete("id").wait(), None)
        assert_type(px.operations.handle("id").wait(), Any)


def either(px: ProximityAPI) -> App:
    handle = px.apps.deploy("gitea", hostname="git-1")
    assert_type(handle, OperationHandleAPI[App])
    assert_type(handle.wait(), App)
    assert_type(px.apps.deploy_image("nginx:1.27", hostname="web").wait(), App)
    assert_type(px.backups.create("id").wait(), Backup)
    return handle.wait()


def both() -> None:
    with Proximity.local() as local_px:
        assert_type(local_px, Proximity)  # the local class: its local-only members stay typed
        assert_type(local_px.apps.deploy("gitea", hostname="git-1"), OperationHandle[App])
        local_px.hosts.host_keys("pve")
        either(local_px)
    with Proximity.connect("agent:50051", token="pxt_x") as remote_px:
        either(remote_px)
"""


def _mypy(tmp_path: Path, source: str) -> tuple[int, str]:
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    # the repository's cache: the SDK itself is checked once by the suite's own mypy run
    out, err, code = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(snippet),
        ]
    )
    return code, out + err


def test_results_are_typed_local_and_remote(tmp_path: Path) -> None:
    code, output = _mypy(tmp_path, SNIPPET)
    assert code == 0, output


def test_the_contract_lacks_the_local_only_members(tmp_path: Path) -> None:
    """Through the contract a local-only member is a type error: the check above can fail."""
    code, output = _mypy(
        tmp_path,
        SNIPPET
        + """

def local_only(px: ProximityAPI) -> None:
    px.hosts.host_keys("pve")
""",
    )
    assert code == 1 and '"HostsAPI" has no attribute "host_keys"' in output, output


def test_a_wrong_expectation_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a deploy's result is not a Backup (nor Any)."""
    wrong = SNIPPET.replace(
        'assert_type(px.apps.deploy("gitea", hostname="git-1").wait(), App)',
        'assert_type(px.apps.deploy("gitea", hostname="git-1").wait(), Backup)',
        1,
    )
    code, output = _mypy(tmp_path, wrong)
    assert code == 1 and 'Expression is of type "App", not "Backup"' in output, output


def test_dir_lists_the_public_names_only() -> None:
    public = [name for name in dir(proximity_sdk) if not name.startswith("_")]
    assert public == sorted(proximity_sdk.__all__)
    for helper in ("Any", "TYPE_CHECKING", "annotations", "importlib"):
        assert helper not in dir(proximity_sdk)
