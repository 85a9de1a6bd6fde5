"""Proximity catalog source for Portainer v2 app templates. See README.md for configuration."""

from __future__ import annotations

__version__ = "0.1.0"
