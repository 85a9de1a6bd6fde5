"""Validation of what goes into a hosts file: host names (RFC 1123) and IP addresses."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["is_valid_hostname", "parse_address"]

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def is_valid_hostname(name: str) -> bool:
    """True for an RFC 1123 host name: dot-separated labels of 1-63 letters, digits and inner
    hyphens, at most 253 characters in all, and not all digits (it would read as an address)."""
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.lower().split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def parse_address(raw: str) -> str | None:
    """The address in canonical form (``10.0.0.5``, ``fd00::5``), or None when ``raw`` is not a
    usable host address. A prefix length (``10.0.0.5/24``, as in ``/lxc/{vmid}/interfaces``) is
    dropped; unspecified and multicast addresses are refused."""
    try:
        address = ipaddress.ip_interface(raw.strip()).ip
    except ValueError:
        return None
    if address.is_unspecified or address.is_multicast:
        return None
    return str(address)
