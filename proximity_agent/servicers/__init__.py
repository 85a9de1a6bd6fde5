"""Thin gRPC servicers, one module per service: parse the request, call the SDK, convert back.

``add_all(server, backend)`` registers every service and returns their full names (for
reflection and health checking).
"""

from __future__ import annotations

from typing import Any

from proximity_agent.servicers._base import Backend
from proximity_agent.servicers.apps import AppServicer
from proximity_agent.servicers.backups import BackupServicer
from proximity_agent.servicers.catalog import CatalogServicer
from proximity_agent.servicers.hosts import HostServicer, NodeServicer
from proximity_agent.servicers.maintenance import MaintenanceServicer
from proximity_agent.servicers.operations import OperationServicer
from proximity_agent.servicers.settings import SettingsServicer
from proximity_agent.servicers.users import UserServicer
from proximity_sdk._pb.proximity.v1 import (
    apps_pb2,
    apps_pb2_grpc,
    backups_pb2,
    backups_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    hosts_pb2,
    hosts_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)

__all__ = ["SERVICE_NAMES", "add_all"]

SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (catalog_pb2, "CatalogService"),
        (hosts_pb2, "HostService"),
        (hosts_pb2, "NodeService"),
        (apps_pb2, "AppService"),
        (operations_pb2, "OperationService"),
        (settings_pb2, "SettingsService"),
        (users_pb2, "UserService"),
        (backups_pb2, "BackupService"),
        (maintenance_pb2, "MaintenanceService"),
    )
)


def add_all(server: Any, backend: Backend) -> tuple[str, ...]:
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(backend), server)
    hosts_pb2_grpc.add_HostServiceServicer_to_server(HostServicer(backend), server)
    hosts_pb2_grpc.add_NodeServiceServicer_to_server(NodeServicer(backend), server)
    apps_pb2_grpc.add_AppServiceServicer_to_server(AppServicer(backend), server)
    operations_pb2_grpc.add_OperationServiceServicer_to_server(OperationServicer(backend), server)
    settings_pb2_grpc.add_SettingsServiceServicer_to_server(SettingsServicer(backend), server)
    users_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(backend), server)
    backups_pb2_grpc.add_BackupServiceServicer_to_server(BackupServicer(backend), server)
    maintenance_pb2_grpc.add_MaintenanceServiceServicer_to_server(MaintenanceServicer(backend), server)
    return SERVICE_NAMES
