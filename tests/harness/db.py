"""Harness: db (fixtures exported through __all__)."""

__all__: list[str] = []
