"""Tests of the gRPC agent and its contract."""
