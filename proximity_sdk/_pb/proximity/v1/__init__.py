"""Generated: package `proximity.v1` of the contract."""
