"""The Proximity agent: a gRPC service around proximity_sdk."""

__version__ = "0.1.0"
