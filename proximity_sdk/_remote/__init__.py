"""The remote SDK: ``Proximity.connect(target, token=...)`` speaks to a Proximity agent over gRPC
and offers exactly the API of ``Proximity.local()`` (same namespaces, methods, models, errors).

Conversions live in ``_convert.py``, errors in ``_errors.py``, the channel in ``_channel.py``,
long actions in ``_handle.py``; one module per namespace.
"""
