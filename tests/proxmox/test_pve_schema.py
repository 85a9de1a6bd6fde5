"""The request schema checker itself: for each rule, a request that passes and one that does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.pve_schema import (
    RecordedRequest,
    _fakepve_schema,
    check_requests,
    require_shared,
    schema_dir,
    schemas,
)


def _problems(method: str, path: str, query: str = "", body: str = "", version: str = "9.1") -> list[str]:
    req = RecordedRequest(
        method, "/api2/json" + path, query, body.encode(), "application/x-www-form-urlencoded" if body else ""
    )
    return [p.message for p in check_requests([req], versions=(version,))]


def test_both_schemas_load_from_beside_the_repo() -> None:
    require_shared("the PVE 9.1 and 8.4 API schemas (pve-api/)")
    loaded = schemas()
    assert set(loaded) == {"9.1", "8.4"}
    assert len(loaded["9.1"].paths) > 400
    assert len(loaded["8.4"].paths) > 380


def test_schema_dir_is_found_relative_to_any_clone(tmp_path: Path) -> None:
    clone = tmp_path / "elsewhere" / "repo"
    shared = tmp_path / "elsewhere" / "shared" / "pve-api"
    shared.mkdir(parents=True)
    clone.mkdir()
    (shared / "apidata.json").write_text("[]")
    assert schema_dir(clone) == shared
    with pytest.raises(FileNotFoundError, match="beside the repository"):
        schema_dir(tmp_path / "lonely")


def test_fakepves_bundled_schema_stands_in_for_pve9_without_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone without ../shared checks against PVE 9 with fakepve's schema; CI insists on shared/."""
    bundled = _fakepve_schema()
    assert len(bundled.paths) > 400
    assert bundled.check("GET", "/nodes/pve1/lxc/100/config", {}) == []
    assert any("no such path" in p for p in bundled.check("GET", "/nodes/pve1/lxcs", {}))
    monkeypatch.setenv("PROXIMITY_SHARED_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("CI", raising=False)
    schemas.cache_clear()
    try:
        assert set(schemas()) == {"9.1"}
        # the 8.4 half of a check is left out, not failed
        req = RecordedRequest("GET", "/api2/json/nodes/pve1/lxcs")
        assert [p.version for p in check_requests([req])] == ["9.1"]
        monkeypatch.setenv("CI", "1")
        schemas.cache_clear()
        with pytest.raises(FileNotFoundError, match="beside the repository"):
            schemas()
    finally:
        schemas.cache_clear()


def test_path_must_exist() -> None:
    assert _problems("GET", "/nodes/pve1/lxc") == []
    assert any("no such path" in p for p in _problems("GET", "/nodes/pve1/lxcs"))


def test_method_must_exist() -> None:
    assert _problems("GET", "/version") == []
    assert any("method DELETE" in p for p in _problems("DELETE", "/version"))


def test_placeholder_values_are_checked() -> None:
    assert _problems("GET", "/nodes/pve1/lxc/100/config") == []
    bad = _problems("GET", "/nodes/pve 1/lxc/100/config")
    assert any("'node'" in p and "pve-node" in p for p in bad)
    assert any("'vmid'" in p for p in _problems("GET", "/nodes/pve1/lxc/12/config"))


def test_volume_placeholder_spans_slashes() -> None:
    assert _problems("DELETE", "/nodes/pve1/storage/local/content/local:vztmpl/x.tar.zst") == []


def test_unknown_parameter() -> None:
    assert (
        _problems(
            "GET",
            "/nodes/pve1/tasks/UPID:pve1:00000001:00000001:6650A1B2:x::root@pam:/log",
            "start=0&limit=50",
        )
        == []
    )
    bad = _problems("GET", "/nodes/pve1/tasks/UPID:pve1:00000001:00000001:6650A1B2:x::root@pam:/log", "offset=3")
    assert bad == ["unknown parameter 'offset'"]


def test_indexed_parameters_map_onto_n() -> None:
    good = (
        "vmid=100&ostemplate=local:vztmpl/d.tar.zst"
        "&net0=name%3Deth0%2Cbridge%3Dvmbr0%2Cip%3Ddhcp&mp3=local-lvm:8%2Cmp%3D/data"
    )
    assert _problems("POST", "/nodes/pve1/lxc", body=good) == []
    assert any("'mp' is missing" in p for p in _problems("POST", "/nodes/pve1/lxc", body=good[: good.index("%2Cmp")]))
    assert "unknown parameter 'nic0'" in _problems(
        "POST", "/nodes/pve1/lxc", body="vmid=100&ostemplate=local:vztmpl/d.tar.zst&nic0=x"
    )


def test_required_parameters() -> None:
    bad = _problems("POST", "/nodes/pve1/lxc", body="vmid=100")
    assert bad == ["required parameter 'ostemplate' is missing"]


def test_enum() -> None:
    assert _problems("GET", "/cluster/resources", "type=vm") == []
    assert any("not one of" in p for p in _problems("GET", "/cluster/resources", "type=container"))


def test_integer_boolean_and_range() -> None:
    base = "vmid=100&ostemplate=local:vztmpl/d.tar.zst"
    assert _problems("POST", "/nodes/pve1/lxc", body=base + "&memory=512&unprivileged=1") == []
    assert any("integer" in p for p in _problems("POST", "/nodes/pve1/lxc", body=base + "&memory=lots"))
    assert any("boolean" in p for p in _problems("POST", "/nodes/pve1/lxc", body=base + "&unprivileged=maybe"))
    assert any("minimum" in p for p in _problems("POST", "/nodes/pve1/lxc", body=base + "&memory=1"))


def test_pattern() -> None:
    path = "/nodes/pve1/storage/local/download-url"
    good = "content=vztmpl&filename=x.tar.zst&url=https://example.com/x.tar.zst"
    assert _problems("POST", path, body=good) == []
    bad = _problems("POST", path, body=good.replace("https://", "ftp://"))
    assert any("regex pattern" in p for p in bad)


def test_property_string_keys() -> None:
    base = "vmid=100&ostemplate=local:vztmpl/d.tar.zst&net0="
    assert _problems("POST", "/nodes/pve1/lxc", body=base + "name%3Deth0%2Cbridge%3Dvmbr0") == []
    bad = _problems("POST", "/nodes/pve1/lxc", body=base + "name%3Deth0%2Cbrige%3Dvmbr0")
    assert any("'brige' is not defined" in p for p in bad)


def test_version_differences_are_seen() -> None:
    require_shared("the PVE 8.4 API schema (pve-api/apidata-pve8.json)")
    # oci-registry-pull is new in 9.x: valid against 9.1, unknown to 8.4.
    path = "/nodes/pve1/storage/local/oci-registry-pull"
    body = "reference=docker.io/library/alpine:latest"
    assert _problems("POST", path, body=body, version="9.1") == []
    assert any("no such path" in p for p in _problems("POST", path, body=body, version="8.4"))


def test_a_redacted_secret_is_not_judged_but_a_short_one_is() -> None:
    """fakepve records secret form values as ***: the checker cannot (and must not) judge those."""
    base = "vmid=100&ostemplate=local%3Avztmpl%2Fa.tar.zst"
    assert _problems("POST", "/nodes/pve1/lxc", body=base + "&password=***") == []
    assert any("at least 5" in p for p in _problems("POST", "/nodes/pve1/lxc", body=base + "&password=abc"))
