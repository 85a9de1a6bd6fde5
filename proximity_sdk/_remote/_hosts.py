"""``px.hosts`` and ``px.nodes`` over the agent (HostService, admin-only; NodeService)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from proximity_sdk._api.hosts import HostsAPI, NodesAPI
from proximity_sdk._pb.proximity.v1 import hosts_pb2, hosts_pb2_grpc
from proximity_sdk._remote._channel import Connection
from proximity_sdk._wire.hosts import (
    host_check_from_pb,
    host_from_pb,
    host_spec_to_pb,
    host_update_to_pb,
    node_from_pb,
    storage_from_pb,
)
from proximity_sdk.errors import NotFoundError
from proximity_sdk.models._listing import Listing
from proximity_sdk.models._requests import host_ca_pem
from proximity_sdk.models.host import Host, Node
from proximity_sdk.models.host_check import HostCheck
from proximity_sdk.models.proxmox import StorageStatus
from proximity_sdk.models.ssh import SshAccess

__all__ = ["RemoteHosts", "RemoteNodes"]


class RemoteHosts(HostsAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = hosts_pb2_grpc.HostServiceStub(conn.channel)

    def add(
        self,
        name: str,
        *,
        url: str,
        token_id: str | None = None,
        token_secret: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        ca_pem: str | None = None,
        ssh: SshAccess | None = None,
        check: bool = True,
    ) -> Host:
        pem = ca_pem if ca_file is None else host_ca_pem(ca_file, ca_pem_given=ca_pem is not None)
        spec = host_spec_to_pb(
            dict(
                name=name,
                url=url,
                token_id=token_id,
                token_secret=token_secret,
                user=user,
                password=password,
                verify_tls=verify_tls,
                ca_pem=pem,
                ssh=ssh,
            )
        )
        request = hosts_pb2.CreateHostRequest(spec=spec, check=bool(check))
        return host_from_pb(self._conn.call(self._stub.CreateHost, request).host)

    def get(self, host: str) -> Host:
        return host_from_pb(self._conn.call(self._stub.GetHost, hosts_pb2.GetHostRequest(host=host)).host)

    def list(self) -> builtins.list[Host]:
        return Listing(
            host_from_pb(h) for h in self._conn.pages(self._stub.ListHosts, hosts_pb2.ListHostsRequest(), "hosts")
        )

    def default(self) -> Host:
        for host in self.list():
            if host.is_default:
                return host
        raise NotFoundError("no host registered yet", hint="Add one with px.hosts.add(...)")

    def set_default(self, host: str) -> Host:
        request = hosts_pb2.SetDefaultHostRequest(host=host)
        return host_from_pb(self._conn.call(self._stub.SetDefaultHost, request).host)

    def update(self, host: str, *, ca_file: str | Path | None = None, **fields: Any) -> Host:
        if ca_file is not None:
            fields["ca_pem"] = host_ca_pem(ca_file, ca_pem_given="ca_pem" in fields)
        if not fields:
            return self.get(host)  # nothing to change, as locally
        spec, paths = host_update_to_pb(fields)
        request = hosts_pb2.UpdateHostRequest(host=host, spec=spec, update_mask=FieldMask(paths=paths))
        return host_from_pb(self._conn.call(self._stub.UpdateHost, request).host)

    def remove(self, host: str) -> None:
        self._conn.call(self._stub.DeleteHost, hosts_pb2.DeleteHostRequest(host=host))

    def test(self, host: str) -> HostCheck:
        return host_check_from_pb(self._conn.call(self._stub.TestHost, hosts_pb2.TestHostRequest(host=host)).check)

    def sync_nodes(self, host: str | None = None) -> builtins.list[Node]:
        response = self._conn.call(self._stub.SyncNodes, hosts_pb2.SyncNodesRequest(host=host or ""))
        return Listing(node_from_pb(n) for n in response.nodes)


class RemoteNodes(NodesAPI):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = hosts_pb2_grpc.NodeServiceStub(conn.channel)

    def list(self, host: str | None = None) -> builtins.list[Node]:
        request = hosts_pb2.ListNodesRequest(host=host or "")
        return Listing(node_from_pb(n) for n in self._conn.pages(self._stub.ListNodes, request, "nodes"))

    def get(self, host: str, name: str) -> Node:
        request = hosts_pb2.GetNodeRequest(host=host, node=name)
        return node_from_pb(self._conn.call(self._stub.GetNode, request).node)

    def storages(
        self,
        node: str,
        *,
        host: str | None = None,
        content: str | None = None,
    ) -> builtins.list[StorageStatus]:
        request = hosts_pb2.ListStoragesRequest(host=host or "", node=node, content=content or "")
        return Listing(storage_from_pb(s) for s in self._conn.pages(self._stub.ListStorages, request, "storages"))
