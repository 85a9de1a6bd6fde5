"""SettingsService (admin-only, see auth.POLICY)."""

from __future__ import annotations

from proximity_agent.servicers._base import Backend
from proximity_sdk._pb.proximity.v1 import settings_pb2, settings_pb2_grpc
from proximity_sdk._wire.settings import settings_to_pb, settings_update_from_pb

__all__ = ["SettingsServicer"]

_Ctx = object


class SettingsServicer(settings_pb2_grpc.SettingsServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def GetSettings(
        self,
        request: settings_pb2.GetSettingsRequest,
        context: _Ctx,
    ) -> settings_pb2.GetSettingsResponse:
        settings = await self._b.run(self._b.px.settings.get)
        return settings_pb2.GetSettingsResponse(settings=settings_to_pb(settings))

    async def UpdateSettings(
        self,
        request: settings_pb2.UpdateSettingsRequest,
        context: _Ctx,
    ) -> settings_pb2.UpdateSettingsResponse:
        fields = settings_update_from_pb(request.settings, request.update_mask)
        settings = await self._b.run(self._b.px.settings.update, **fields)
        return settings_pb2.UpdateSettingsResponse(settings=settings_to_pb(settings))
