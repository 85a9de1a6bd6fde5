"""The remote SDK: ``Proximity.connect(target, token=...)`` speaks to a Proximity agent over gRPC
and offers exactly the API of ``Proximity.local()`` (same namespaces, methods, models, errors).

Conversions live in ``proximity_sdk/_wire`` (shared with the agent), errors in ``_errors.py``, the
channel in ``_channel.py``, long actions in ``_handle.py``; one module per namespace.
"""
