"""Servicers for services whose SDK side is not wired to the agent yet: every RPC answers
UNIMPLEMENTED with a message naming it (never grpc's bare "Method not found")."""

from __future__ import annotations

from typing import Any

from proximity_agent.servicers._base import not_served

__all__ = ["unserved"]


def unserved(base: type[Any], service: str) -> Any:
    """An instance of ``base`` (a generated servicer) whose every RPC raises NotImplementedYet."""

    def make(rpc: str) -> Any:
        async def method(self: Any, request: Any, context: Any) -> Any:
            raise not_served(f"{service}.{rpc}")

        method.__name__ = rpc
        return method

    rpcs = {name: make(name) for name in getattr(base, "__abstractmethods__", ())}
    if not rpcs:  # servicers generated without abc: every public method is an RPC
        rpcs = {name: make(name) for name in vars(base) if name[:1].isupper()}
    return type(f"Unserved{base.__name__}", (base,), rpcs)()
