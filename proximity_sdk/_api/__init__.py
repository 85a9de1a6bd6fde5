"""The public API as types: one Protocol per namespace, which ``Proximity.local()`` (``_resources``,
``catalog``) and ``Proximity.connect()`` (``_remote``) both implement by subclassing it.

The Protocols hold the user's documentation (the implementations inherit it) and let mypy check
that both clients offer every method with the same signature. Model types are imported for type
checking only: importing a Protocol costs no pydantic, so the agent client stays quick to start.
Members only one side has (the local SDK's host keys, trusted catalog sources, ...) are not here;
``tests/remote/test_parity.py`` lists them.
"""
