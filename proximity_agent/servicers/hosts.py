"""HostService (admin-only, see auth.POLICY) and NodeService."""

from __future__ import annotations

from proximity_agent.servicers._base import Backend, page_request, paginate
from proximity_sdk._pb.proximity.v1 import hosts_pb2, hosts_pb2_grpc
from proximity_sdk._wire.hosts import (
    host_check_to_pb,
    host_spec_from_pb,
    host_to_pb,
    host_update_from_pb,
    node_to_pb,
    storage_to_pb,
)
from proximity_sdk.errors import ValidationError

__all__ = ["HostServicer", "NodeServicer"]

_Ctx = object


def _named(value: str, field: str = "host") -> str:
    if not value:
        raise ValidationError(f"{field} is required (an id or a name)", field=field)
    return value


class HostServicer(hosts_pb2_grpc.HostServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def CreateHost(self, request: hosts_pb2.CreateHostRequest, context: _Ctx) -> hosts_pb2.CreateHostResponse:
        if not request.HasField("spec"):
            raise ValidationError("spec is required", field="spec")
        fields = host_spec_from_pb(request.spec)
        check = request.check if request.HasField("check") else True
        host = await self._b.run(self._b.px.hosts.add, fields.pop("name"), check=check, **fields)
        return hosts_pb2.CreateHostResponse(host=host_to_pb(host))

    async def GetHost(self, request: hosts_pb2.GetHostRequest, context: _Ctx) -> hosts_pb2.GetHostResponse:
        host = await self._b.run(self._b.px.hosts.get, _named(request.host))
        return hosts_pb2.GetHostResponse(host=host_to_pb(host))

    async def ListHosts(self, request: hosts_pb2.ListHostsRequest, context: _Ctx) -> hosts_pb2.ListHostsResponse:
        page = page_request(request.page_size, request.page_token, method="ListHosts")
        hosts, token = paginate(await self._b.run(self._b.px.hosts.list), page)
        return hosts_pb2.ListHostsResponse(hosts=[host_to_pb(h) for h in hosts], next_page_token=token)

    async def UpdateHost(self, request: hosts_pb2.UpdateHostRequest, context: _Ctx) -> hosts_pb2.UpdateHostResponse:
        fields = host_update_from_pb(request.spec, request.update_mask)
        host = await self._b.run(self._b.px.hosts.update, _named(request.host), **fields)
        return hosts_pb2.UpdateHostResponse(host=host_to_pb(host))

    async def DeleteHost(self, request: hosts_pb2.DeleteHostRequest, context: _Ctx) -> hosts_pb2.DeleteHostResponse:
        await self._b.run(self._b.px.hosts.remove, _named(request.host))
        return hosts_pb2.DeleteHostResponse()

    async def SetDefaultHost(
        self,
        request: hosts_pb2.SetDefaultHostRequest,
        context: _Ctx,
    ) -> hosts_pb2.SetDefaultHostResponse:
        host = await self._b.run(self._b.px.hosts.set_default, _named(request.host))
        return hosts_pb2.SetDefaultHostResponse(host=host_to_pb(host))

    async def TestHost(self, request: hosts_pb2.TestHostRequest, context: _Ctx) -> hosts_pb2.TestHostResponse:
        check = await self._b.run_long(self._b.px.hosts.test, _named(request.host))
        return hosts_pb2.TestHostResponse(check=host_check_to_pb(check))

    async def SyncNodes(self, request: hosts_pb2.SyncNodesRequest, context: _Ctx) -> hosts_pb2.SyncNodesResponse:
        nodes = await self._b.run_long(self._b.px.hosts.sync_nodes, request.host or None)
        return hosts_pb2.SyncNodesResponse(nodes=[node_to_pb(n) for n in nodes])


class NodeServicer(hosts_pb2_grpc.NodeServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def ListNodes(self, request: hosts_pb2.ListNodesRequest, context: _Ctx) -> hosts_pb2.ListNodesResponse:
        page = page_request(request.page_size, request.page_token, method="ListNodes", filters=(request.host,))
        nodes, token = paginate(await self._b.run(self._b.px.nodes.list, request.host or None), page)
        return hosts_pb2.ListNodesResponse(nodes=[node_to_pb(n) for n in nodes], next_page_token=token)

    async def GetNode(self, request: hosts_pb2.GetNodeRequest, context: _Ctx) -> hosts_pb2.GetNodeResponse:
        node = await self._b.run(self._b.px.nodes.get, _named(request.host), _named(request.node, "node"))
        return hosts_pb2.GetNodeResponse(node=node_to_pb(node))

    async def ListStorages(
        self,
        request: hosts_pb2.ListStoragesRequest,
        context: _Ctx,
    ) -> hosts_pb2.ListStoragesResponse:
        page = page_request(
            request.page_size,
            request.page_token,
            method="ListStorages",
            filters=(request.host, request.node, request.content),
        )
        storages = await self._b.run(
            self._b.px.nodes.storages,
            _named(request.node, "node"),
            host=request.host or None,
            content=request.content or None,
        )
        chunk, token = paginate(storages, page)
        return hosts_pb2.ListStoragesResponse(storages=[storage_to_pb(s) for s in chunk], next_page_token=token)
