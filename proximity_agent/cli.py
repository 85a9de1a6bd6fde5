"""`proximity-agent`: serve the gRPC API (not yet built: see the README's roadmap)."""

from __future__ import annotations

import argparse
import sys

from proximity_agent import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proximity-agent", description="The Proximity gRPC agent.")
    parser.add_argument("--version", action="version", version=f"proximity-agent {__version__}")
    parser.parse_args(argv)
    print("proximity-agent: the gRPC agent is not built yet; use the SDK (import proximity_sdk).", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
