"""Proximity lifecycle listener keeping a hosts file in sync with the apps. See README.md."""

from __future__ import annotations

__version__ = "0.1.0"
