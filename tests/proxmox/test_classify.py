"""Error classification: every Proxmox failure lands on one class of proximity_sdk.errors.

Most cases are produced by a real fakepve fault through our client over HTTPS.
"""

from __future__ import annotations

import pytest

from proximity_sdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    InvalidParameterError,
    LockedError,
    NotFoundError,
    PermissionDeniedError,
    ProximityError,
    ProxmoxError,
    RootRequiredError,
    TransientError,
    UnavailableError,
    UnreachableError,
)
from proximity_sdk.proxmox._classify import classify_response
from proximity_sdk.proxmox.client import ProxmoxClient
from tests.harness.pve import HarnessPve, token_client

CT = "/nodes/pve1/lxc/100"
TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


@pytest.mark.parametrize(
    ("method", "path", "name", "expected"),
    [
        ("POST", CT + "/status/start", "already_running", ConflictError),
        ("POST", CT + "/status/start", "config_lock_timeout", LockedError),
        ("POST", CT + "/status/start", "no_quorum", UnavailableError),
        ("POST", CT + "/status/start", "no_route_to_host", UnreachableError),
        ("POST", CT + "/status/start", "permission_denied", PermissionDeniedError),
        ("POST", CT + "/status/start", "param_skiplock_only_root_may", RootRequiredError),
        ("POST", CT + "/status/start", "invalid_csrf", AuthenticationError),
        ("POST", CT + "/status/start", "not_implemented", ProxmoxError),
        ("POST", CT + "/status/start", "hostname_lookup_failed", NotFoundError),
        ("DELETE", CT, "locked", LockedError),
        ("DELETE", CT, "configuration_file_does_not_exist", NotFoundError),
        ("PUT", CT + "/config", "permission_check_failed_changing_feature_2", RootRequiredError),
        ("PUT", CT + "/config", "only_root_can_pass_arbitrary", RootRequiredError),
        ("PUT", CT + "/config", "param_delete_unknown_option", InvalidParameterError),
        ("PUT", CT + "/config", "storage_does_not_exist", NotFoundError),
        ("GET", "/version", "invalid_ticket", AuthenticationError),
    ],
)
def test_named_pve_errors(
    pve_client: ProxmoxClient, pve: HarnessPve, method: str, path: str, name: str, expected: type[Exception]
) -> None:
    pve.add_ct(100, name="web")
    pve.fail(method, path, error=name)
    params = {"description": "x"} if method == "PUT" else {}
    with pytest.raises(ProximityError) as info:
        pve_client.request(method, path, params)  # type: ignore[arg-type]
    err = info.value
    assert type(err) is expected, f"{name}: {err!r}"
    assert err.method == method
    assert err.path == path
    assert err.status is not None
    assert err.hint  # every error says what to do


def test_missing_container_is_not_found(pve_client: ProxmoxClient) -> None:
    with pytest.raises(NotFoundError) as info:
        pve_client.lxc_config("pve1", 999)
    assert info.value.status == 500
    assert "does not exist" in str(info.value)


def test_duplicate_create_is_already_exists(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    with pytest.raises(AlreadyExistsError) as info:
        pve_client.post("/nodes/pve1/lxc", vmid=100, ostemplate=TEMPLATE, hostname="dup")
    assert info.value.status == 500


def test_taken_vmid_probe_is_already_exists(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    with pytest.raises(AlreadyExistsError) as info:
        pve_client.get("/cluster/nextid", vmid=100)
    assert info.value.status == 400


def test_held_config_lock_is_locked(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.serving.call(pve.hold_config_lock(100, None))
    with pytest.raises(LockedError) as info:
        pve_client.put(CT + "/config", description="new")
    assert "can't lock file" in str(info.value)
    assert not isinstance(info.value, TransientError)  # "got timeout" here is a lock, not a hiccup


def test_snapshot_lock_is_locked(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.snapshot_lock(100)
    with pytest.raises(LockedError) as info:
        pve_client.delete(CT)
    assert "CT is locked (snapshot)" in str(info.value)


def test_bind_mount_by_token_needs_root(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    with pytest.raises(RootRequiredError) as info:
        pve_client.post(
            "/nodes/pve1/lxc", vmid=100, ostemplate=TEMPLATE, rootfs="local-lvm:8", mp0="/srv/data,mp=/data"
        )
    assert "root@pam" in str(info.value)  # the hint says how to get there


def test_keyctl_by_non_root_needs_root(pve: HarnessPve, pve_ca: str) -> None:
    pve.add_ct(100, name="web")
    pve.apitokens["ops@pve!px"] = "ops-secret"
    pve.grant("ops@pve", "/vms/100", "VM.Config.Options", "VM.Audit")
    with ProxmoxClient(url=pve.url, token_id="ops@pve!px", token_secret="ops-secret", ca_file=pve_ca) as ops:
        with pytest.raises(RootRequiredError):
            ops.put(CT + "/config", features="keyctl=1,nesting=1")
        with pytest.raises(PermissionDeniedError) as info:
            ops.post(CT + "/status/start")
        assert type(info.value) is PermissionDeniedError
        assert info.value.status == 403


@pytest.mark.pve_schema_exempt  # the bad value is the point: the schema check would (rightly) flag it
def test_bad_parameter_keeps_field_errors(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    with pytest.raises(InvalidParameterError) as info:
        pve_client.put(CT + "/config", memory="lots")
    assert "memory" in info.value.errors
    assert info.value.field == "memory"
    assert info.value.status == 400


def test_offline_node_is_unreachable(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_node("pve2")
    pve.set_node_offline("pve2")
    with pytest.raises(UnreachableError) as info:
        pve_client.node_status("pve2")
    assert info.value.status == 595
    assert pve_client.request_count == 1  # not retried: the node is down, not hiccupping


def test_lost_quorum_is_unavailable(pve_client: ProxmoxClient, pve: HarnessPve) -> None:
    pve.add_ct(100, name="web")
    pve.lose_quorum()
    with pytest.raises(UnavailableError) as info:
        pve_client.post(CT + "/status/start")
    assert "quorum" in str(info.value)


def test_transient_read_fault_after_retries(pve: HarnessPve, pve_ca: str) -> None:
    pve.fail("GET", "/cluster/resources", 599, "Too many redirections")
    client = token_client(pve, pve_ca, read_retries=1)
    with pytest.raises(TransientError) as info:
        client.cluster_resources()
    assert info.value.status == 599
    assert client.request_count == 2


@pytest.mark.parametrize(
    ("status", "message", "errors", "expected"),
    [
        (500, "no such resource 'ct:111'", None, NotFoundError),
        (500, "unable to create VM 108 - VM 108 already exists on node 'pve2'", None, AlreadyExistsError),
        (400, "Parameter verification failed.", {"vmid": "VM 218 already exists"}, AlreadyExistsError),
        (
            500,
            "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
            None,
            LockedError,
        ),
        (500, "proxy handler failed: got timeout", None, TransientError),
        (503, "Service Unavailable", None, TransientError),
        (596, "Broken pipe", None, TransientError),
        (595, "Connection refused", None, UnreachableError),
        (403, "Permission check failed (/, Sys.Modify)", None, PermissionDeniedError),
        (403, "Permission check failed (user != root@pam)", None, RootRequiredError),
        (400, "Parameter verification failed.", {"upid": "no such task"}, NotFoundError),
        (500, "something unexpected", None, ProxmoxError),
        (404, "Not Found", None, NotFoundError),
    ],
)
def test_classify_response_table(
    status: int, message: str, errors: dict[str, str] | None, expected: type[Exception]
) -> None:
    err = classify_response(status, message, errors=errors, method="GET", path="/x")
    assert type(err) is expected
    assert err.status == status
