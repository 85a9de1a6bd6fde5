"""``common.proto``: :class:`Resources` <-> ``Resources``, both directions (answers and requests
carry it alike); and the well-known Timestamp of requests (``now`` of the RunDue calls, a token's
``expires_at``), from ``_base`` where the answers' conversions take it too."""

from __future__ import annotations

import pydantic

from proximity_sdk._pb.proximity.v1 import common_pb2
from proximity_sdk._wire._base import invalid_field, optional_from_pb, timestamp_from_pb, timestamp_to_pb
from proximity_sdk.models.resources import Resources

__all__ = ["resources_from_pb", "resources_to_pb", "timestamp_from_pb", "timestamp_to_pb"]


def resources_to_pb(resources: Resources) -> common_pb2.Resources:
    return common_pb2.Resources(
        cores=resources.cores, memory_mb=resources.memory_mb, swap_mb=resources.swap_mb, disk_gb=resources.disk_gb
    )


def resources_from_pb(message: common_pb2.Resources, *, field: str = "resources") -> Resources:
    """Fields left unset are None; values the model refuses are a ValidationError naming
    ``field.<sub-field>``."""
    try:
        return Resources(
            cores=optional_from_pb(message, "cores"),
            memory_mb=optional_from_pb(message, "memory_mb"),
            swap_mb=optional_from_pb(message, "swap_mb"),
            disk_gb=optional_from_pb(message, "disk_gb"),
        )
    except pydantic.ValidationError as exc:
        raise invalid_field(exc, field=field) from None
