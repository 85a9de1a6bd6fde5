"""The wire: every protobuf <-> model conversion, written once and used by both ends.

The agent (``proximity_agent/servicers``) turns the SDK's models into answers with ``*_to_pb`` and
reads requests with ``*_from_pb``; the remote client (``proximity_sdk/_remote``) does the opposite
with the same functions. One module per proto file of ``proto/proximity/v1/`` (``common``,
``apps``, ``operations``, ``catalog``, ``hosts``, ``maintenance``, ``settings``, ``users``,
``backups``), each holding both directions side by side; ``_base`` holds the helpers they share
(timestamps, optional fields, JSON text, enums); ``errors`` holds what both ends know about a
failed call's trailing metadata.

This package imports nothing itself: a client that prints wire messages (the catalog table
through an agent) loads neither pydantic nor the models (tests/cli/test_agent_imports.py).
"""
