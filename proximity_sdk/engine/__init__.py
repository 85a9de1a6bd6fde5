"""The operation engine: submit, run, journal, recover and follow operations, whatever their kind.

The kinds (deploy, clone, backup, ...) live in :mod:`proximity_sdk.operations` and are registered
into an engine; nothing here imports them.
"""
