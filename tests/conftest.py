"""Test harness: real fakepve over HTTPS, a real OpenSSH sshd with a `pct` stand-in, real databases.

Fixtures live in tests/harness/*; each module lists its fixtures in __all__.
"""

from tests.harness.db import *  # noqa: F403
from tests.harness.pve import *  # noqa: F403
from tests.harness.sshd import *  # noqa: F403


def pytest_report_header() -> str:
    from tests.harness.pve_schema import schema_source

    return f"PVE API schemas: {schema_source()}"
