"""The apps' harness (fakepve, the sshd stand-in, ``lab``) for the hardening tests."""

from tests.apps.conftest import lab

__all__ = ["lab"]
