"""Generated: package `proximity` of the contract."""
