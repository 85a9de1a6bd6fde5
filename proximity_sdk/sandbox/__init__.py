"""A sandbox Proxmox for trying Proximity without a cluster (needs the ``sandbox`` extra).

This package is the only code in Proximity that imports ``fakepve`` (AGPL, a fake of the PVE 9
API); it does so lazily, so the rest of the SDK never depends on it.

    from proximity_sdk.sandbox import Sandbox
    with Sandbox.start() as sb:
        print(sb.url, sb.token_id)
"""

from proximity_sdk.sandbox._server import RealNodeUnavailableError, Sandbox, SandboxUnavailableError

__all__ = ["RealNodeUnavailableError", "Sandbox", "SandboxUnavailableError"]
