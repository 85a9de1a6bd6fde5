"""Test harness: real fakepve over HTTPS, a real OpenSSH sshd with a `pct` stand-in, real databases.

Fixtures live in tests/harness/*; each module lists its fixtures in __all__.
"""

from tests.harness.db import *  # noqa: F403
from tests.harness.pve import *  # noqa: F403
from tests.harness.sshd import *  # noqa: F403


def pytest_report_header() -> str:
    from tests.harness.pve_schema import schema_source

    return f"PVE API schemas: {schema_source()}"


def pytest_terminal_summary(terminalreporter: object) -> None:
    """Repeated at the end (the header is hidden by -q): what a clone without ../shared left out."""
    from tests.harness.pve_schema import schema_dir, schema_source

    try:
        schema_dir()
    except FileNotFoundError:
        terminalreporter.write_line(f"PVE API schemas: {schema_source()}")  # type: ignore[attr-defined]
