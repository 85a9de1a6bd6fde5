"""The gRPC contract (proto/proximity/v1) and its generated modules (proximity_sdk/_pb).

Checks that the committed modules are exactly what scripts/gen-proto produces, that ``buf lint``
(STANDARD, no exceptions) passes and catches violations, that ``buf breaking`` (FILE) catches a
deleted field, and the house rules buf does not know: one Request/Response pair per RPC,
pagination on every List, an Operation from every long action, no secrets in responses,
timestamps as Timestamp, a comment on every element, and stubs that serve every RPC.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor, ServiceDescriptor

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto" / "proximity" / "v1"
PB_DIR = ROOT / "proximity_sdk" / "_pb"
PB_PACKAGE = "proximity_sdk._pb.proximity.v1"
STEMS = sorted(p.stem for p in PROTO_DIR.glob("*.proto"))

# Long actions answer at once with an Operation (ARCHITECTURE.md, "The public surface").
LONG_ACTIONS = {
    "DeployApp",
    "StartApp",
    "StopApp",
    "RestartApp",
    "DeleteApp",
    "CloneApp",
    "MigrateApp",
    "ResizeApp",
    "AdoptApp",
    "CreateBackup",
    "RestoreBackup",
    "DeleteBackup",
}
# What the SDK offers, by RPC: the contract must cover all of it (issue "The gRPC agent").
REQUIRED_RPCS = {
    "CatalogService": {"ListCatalogApps", "GetCatalogApp", "ListCatalogCategories", "GetCatalogStats", "ReloadCatalog"},
    "HostService": {
        "CreateHost",
        "GetHost",
        "ListHosts",
        "UpdateHost",
        "DeleteHost",
        "SetDefaultHost",
        "TestHost",
        "SyncNodes",
    },
    "NodeService": {"ListNodes", "GetNode", "ListStorages"},
    "AppService": LONG_ACTIONS - {"CreateBackup", "RestoreBackup", "DeleteBackup"}
    | {"GetApp", "ListApps", "DiscoverApps", "GetAppLogs", "GetAppCredentials"},
    "BackupService": {
        "CreateBackup",
        "ListBackups",
        "GetBackup",
        "GetBackupStats",
        "RestoreBackup",
        "DeleteBackup",
        "CreateBackupSchedule",
        "ListBackupSchedules",
        "DeleteBackupSchedule",
        "RunDueBackups",
        "CreateBackupTarget",
        "ListBackupTargets",
        "DeleteBackupTarget",
    },
    "OperationService": {"GetOperation", "ListOperations", "CancelOperation", "WatchOperation"},
    "SettingsService": {"GetSettings", "UpdateSettings"},
    "UserService": {"CreateUser", "ListUsers", "CreateToken", "ListTokens", "RevokeToken"},
    "MaintenanceService": {"Reconcile", "RunJanitor", "RunNodeSync"},
}
# Field names that hold secrets; only these responses may carry them.
SECRET_FIELDS = {"password", "token_secret", "private_key", "root_password", "secrets", "secret", "options_json"}
SECRET_RESPONSES = {"GetAppCredentialsResponse", "CreateTokenResponse"}


def _pb2(stem: str) -> ModuleType:
    return importlib.import_module(f"{PB_PACKAGE}.{stem}_pb2")


def _pb2_grpc(stem: str) -> ModuleType:
    return importlib.import_module(f"{PB_PACKAGE}.{stem}_pb2_grpc")


def _files() -> list[FileDescriptor]:
    return [_pb2(stem).DESCRIPTOR for stem in STEMS]


def _services() -> Iterator[tuple[str, ServiceDescriptor]]:
    for stem, file in zip(STEMS, _files(), strict=True):
        for service in file.services_by_name.values():
            yield stem, service


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _versions() -> str:
    names = ("grpcio-tools", "mypy-protobuf", "protobuf")
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)


def _buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx is missing: install Node.js (npm) so `npx @bufbuild/buf` can run")
    return subprocess.run(
        [npx, "--yes", "@bufbuild/buf", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _module_copy(tmp_path: Path) -> Path:
    """A copy of the buf workspace (buf.yaml + proto/) to change freely."""
    copy = tmp_path / "workspace"
    shutil.copytree(ROOT / "proto", copy / "proto")
    shutil.copy(ROOT / "buf.yaml", copy / "buf.yaml")
    return copy


# --- generated modules -------------------------------------------------------------------------


def test_committed_modules_are_exactly_what_gen_proto_writes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-proto"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    fresh, committed = _tree(tmp_path), _tree(PB_DIR)
    assert set(fresh) == set(committed), (
        f"generated files differ: missing {sorted(set(fresh) - set(committed))}, "
        f"stale {sorted(set(committed) - set(fresh))}; run scripts/gen-proto"
    )
    changed = [name for name in fresh if fresh[name] != committed[name]]
    if changed:
        first = changed[0]
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed[first].decode().splitlines(keepends=True),
                    fresh[first].decode().splitlines(keepends=True),
                    f"committed/{first}",
                    f"generated/{first}",
                )
            )[:40]
        )
        pytest.fail(
            f"{len(changed)} generated file(s) differ from proto/ ({', '.join(changed)}); "
            f"run scripts/gen-proto (generators here: {_versions()}).\n{diff}"
        )


def test_every_proto_file_has_its_modules() -> None:
    assert STEMS, "no .proto files in proto/proximity/v1"
    for stem, file in zip(STEMS, _files(), strict=True):
        assert file.name == f"proximity/v1/{stem}.proto"
        assert file.package == "proximity.v1"
        assert (PB_DIR / "proximity" / "v1" / f"{stem}_pb2.pyi").is_file()
        assert (PB_DIR / "proximity" / "v1" / f"{stem}_pb2_grpc.pyi").is_file()


# --- buf ---------------------------------------------------------------------------------------


def test_buf_lint_passes() -> None:
    config = (ROOT / "buf.yaml").read_text()
    carve_outs = re.findall(r"^\s*(except|ignore|ignore_only)\s*:", config, re.MULTILINE)
    assert not carve_outs, f"buf.yaml must not carve out lint exceptions: {carve_outs}"
    done = _buf("lint", cwd=ROOT)
    assert done.returncode == 0, f"buf lint failed:\n{done.stdout}{done.stderr}"


def test_buf_lint_catches_a_shared_request_message(tmp_path: Path) -> None:
    copy = _module_copy(tmp_path)
    apps = copy / "proto" / "proximity" / "v1" / "apps.proto"
    apps.write_text(
        apps.read_text().replace(
            "rpc GetApp(GetAppRequest) returns (GetAppResponse);",
            "rpc GetApp(GetAppRequest) returns (GetAppResponse);\n"
            "  rpc PeekApp(GetAppRequest) returns (GetAppResponse);",
        )
    )
    done = _buf("lint", cwd=copy)
    assert done.returncode != 0
    assert "PeekApp" in done.stdout + done.stderr


def test_buf_breaking_catches_a_deleted_field_and_passes_an_addition(tmp_path: Path) -> None:
    copy = _module_copy(tmp_path)
    apps = copy / "proto" / "proximity" / "v1" / "apps.proto"
    original = apps.read_text()
    apps.write_text(
        original.replace(
            "  // Deployment configuration", "  // An addition.\n  string added = 99;\n  // Deployment configuration"
        )
    )
    added = _buf("breaking", "--against", str(ROOT), cwd=copy)
    assert added.returncode == 0, added.stdout + added.stderr
    apps.write_text(original.replace("  string config_json = 14;\n", ""))
    deleted = _buf("breaking", "--against", str(ROOT), cwd=copy)
    assert deleted.returncode != 0
    assert "config_json" in deleted.stdout + deleted.stderr


# --- house rules -------------------------------------------------------------------------------


def test_every_rpc_has_its_own_request_and_response() -> None:
    uses: Counter[str] = Counter()
    for _, service in _services():
        assert service.name.endswith("Service")
        for method in service.methods:
            assert method.input_type.full_name == f"proximity.v1.{method.name}Request", method.full_name
            assert method.output_type.full_name == f"proximity.v1.{method.name}Response", method.full_name
            uses.update([method.input_type.full_name, method.output_type.full_name])
    shared = [name for name, count in uses.items() if count > 1]
    assert not shared, f"messages used by more than one RPC: {shared}"
    messages = {m.full_name for f in _files() for m in f.message_types_by_name.values()}
    orphans = sorted(n for n in messages if n.endswith(("Request", "Response")) and n not in uses)
    assert not orphans, f"request/response messages no RPC uses: {orphans}"


def test_the_contract_covers_the_sdk() -> None:
    offered = {service.name: {m.name for m in service.methods} for _, service in _services()}
    for service, rpcs in REQUIRED_RPCS.items():
        assert service in offered, f"missing service {service}"
        missing = rpcs - offered[service]
        assert not missing, f"{service} lacks {sorted(missing)}"


def test_every_list_rpc_paginates() -> None:
    lists = [m for _, s in _services() for m in s.methods if m.name.startswith("List")]
    assert len(lists) >= 10
    for method in lists:
        request, response = method.input_type.fields_by_name, method.output_type.fields_by_name
        assert request["page_size"].type == FieldDescriptor.TYPE_INT32, method.name
        assert request["page_token"].type == FieldDescriptor.TYPE_STRING, method.name
        assert response["next_page_token"].type == FieldDescriptor.TYPE_STRING, method.name
        items = [f for f in method.output_type.fields if f.name != "next_page_token"]
        assert len(items) == 1 and items[0].is_repeated, f"{method.name}: one repeated field of items"


def test_long_actions_answer_with_an_operation_at_once() -> None:
    methods = {m.name: m for _, s in _services() for m in s.methods}
    for name in LONG_ACTIONS:
        (field,) = methods[name].output_type.fields
        assert field.message_type is not None, name
        assert (field.name, field.message_type.full_name) == ("operation", "proximity.v1.Operation"), name


def test_watch_operation_streams_events_from_a_sequence_number() -> None:
    (service,) = [s for _, s in _services() if s.name == "OperationService"]
    watch = service.methods_by_name["WatchOperation"]
    assert watch.server_streaming and not watch.client_streaming
    request = watch.input_type.fields_by_name
    assert request["operation_id"].type == FieldDescriptor.TYPE_STRING
    assert request["after_seq"].type == FieldDescriptor.TYPE_INT64
    (event,) = watch.output_type.fields
    assert event.message_type is not None
    assert event.message_type.full_name == "proximity.v1.OperationEvent"
    assert event.message_type.fields_by_name["seq"].type == FieldDescriptor.TYPE_INT64


def _reachable(message: Descriptor, seen: set[str]) -> Iterator[tuple[str, FieldDescriptor]]:
    if message.full_name in seen:
        return
    seen.add(message.full_name)
    for field in message.fields:
        yield message.full_name, field
        if field.message_type is not None:
            yield from _reachable(field.message_type, seen)


def _holds_secret(field: FieldDescriptor) -> bool:
    """A secret-named field holding text (a string, or a map to strings); a message of specs is no secret."""
    if field.name not in SECRET_FIELDS:
        return False
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        return entry.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING
    return field.type == FieldDescriptor.TYPE_STRING


def test_secrets_travel_only_in_their_dedicated_responses() -> None:
    responses = [m.output_type for _, s in _services() for m in s.methods]
    for response in responses:
        secrets = [f"{owner}.{f.name}" for owner, f in _reachable(response, set()) if _holds_secret(f)]
        if response.name in SECRET_RESPONSES:
            assert secrets, f"{response.name} should carry the secret it exists for"
        else:
            assert not secrets, f"{response.name} exposes {secrets}"


def test_times_are_timestamps_and_enums_start_unspecified() -> None:
    for file in _files():
        for message in file.message_types_by_name.values():
            for _, field in _reachable(message, set()):
                if field.name.endswith("_at") or field.name in {"time", "deadline"}:
                    assert field.message_type is not None, field.full_name
                    assert field.message_type.full_name == "google.protobuf.Timestamp", field.full_name
        for enum in file.enum_types_by_name.values():
            zero = enum.values_by_number[0].name
            assert zero.endswith("_UNSPECIFIED"), enum.full_name


def test_settings_update_takes_a_field_mask_over_every_setting() -> None:
    settings = _pb2("settings")
    request = settings.UpdateSettingsRequest.DESCRIPTOR.fields_by_name
    assert request["update_mask"].message_type.full_name == "google.protobuf.FieldMask"
    from proximity_sdk.models.settings import Settings

    assert set(settings.Settings.DESCRIPTOR.fields_by_name) == set(Settings.model_fields)


def _undocumented(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    """Elements of ``file`` without a leading comment. Paths follow descriptor.proto's field numbers:
    file message_type 4, enum_type 5, service 6; message field 2, nested_type 3, enum_type 4;
    enum value 2; service method 2."""
    comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}

    def enum(item: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], owner: str) -> Iterator[str]:
        if not comments.get(path):
            yield f"{owner}{item.name}"
        for j, value in enumerate(item.value):
            if not comments.get((*path, 2, j)):
                yield f"{owner}{item.name}.{value.name}"

    def message(item: descriptor_pb2.DescriptorProto, path: tuple[int, ...], owner: str) -> Iterator[str]:
        if item.options.map_entry:  # synthetic: documented by its map field
            return
        name = f"{owner}{item.name}"
        if not comments.get(path):
            yield name
        for i, field in enumerate(item.field):
            if not comments.get((*path, 2, i)):
                yield f"{name}.{field.name}"
        for i, nested in enumerate(item.nested_type):
            yield from message(nested, (*path, 3, i), f"{name}.")
        for i, nested_enum in enumerate(item.enum_type):
            yield from enum(nested_enum, (*path, 4, i), f"{name}.")

    for i, item in enumerate(file.message_type):
        yield from message(item, (4, i), "")
    for i, top_enum in enumerate(file.enum_type):
        yield from enum(top_enum, (5, i), "")
    for i, service in enumerate(file.service):
        if not comments.get((6, i)):
            yield service.name
        for j, method in enumerate(service.method):
            if not comments.get((6, i, 2, j)):
                yield f"{service.name}.{method.name}"


def test_every_element_is_documented(tmp_path: Path) -> None:
    out = tmp_path / "contract.binpb"
    protos = [f"proximity/v1/{stem}.proto" for stem in STEMS]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *protos,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert len(files) == len(STEMS)
    undocumented = [f"{file.name}: {what}" for file in files for what in _undocumented(file)]
    assert not undocumented, f"undocumented: {undocumented}"


# --- generated stubs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unimplemented_server() -> Iterator[grpc.Channel]:
    """A real server with the generated base servicers (every RPC unimplemented) and a channel to it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    for stem, service in _services():
        module = _pb2_grpc(stem)
        servicer = getattr(module, f"{service.name}Servicer")()
        getattr(module, f"add_{service.name}Servicer_to_server")(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(grace=None)


def _call(rpc: Any, request: Any, *, streaming: bool) -> None:
    answer = rpc(request, timeout=10)
    if streaming:
        list(answer)


def test_every_rpc_is_served_through_its_generated_stub(unimplemented_server: grpc.Channel) -> None:
    called = 0
    for stem, service in _services():
        stub = getattr(_pb2_grpc(stem), f"{service.name}Stub")(unimplemented_server)
        messages = _pb2(stem)
        for method in service.methods:
            request = getattr(messages, method.input_type.name)()
            with pytest.raises(grpc.RpcError) as raised:
                _call(getattr(stub, method.name), request, streaming=method.server_streaming)
            # UNIMPLEMENTED from the base servicer proves path, handler and (de)serializers line up
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED, method.full_name
            called += 1
    assert called == sum(len(s.methods) for _, s in _services())
