"""The remote SDK: ``Proximity.connect(target, token=...)`` speaks to a Proximity agent over gRPC
and implements ``ProximityAPI`` (``_api``), as ``Proximity.local()`` does: same namespaces, methods,
models, errors; the argument checks are the local SDK's (``models/_requests.py``).

Conversions live in ``proximity_sdk/_wire`` (shared with the agent), errors in ``_errors.py``, the
channel in ``_channel.py``, long actions in ``_handle.py``; one module per namespace.
"""
