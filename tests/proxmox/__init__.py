"""Tests of proximity_sdk.proxmox against fakepve over HTTPS."""
