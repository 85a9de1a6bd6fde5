"""Test harness: real fakepve over HTTPS, a real OpenSSH sshd with a `pct` stand-in, real databases.

Fixtures live in tests/harness/*; each module lists its fixtures in __all__.
"""

import os
import signal

import pytest

# A run started in the background by a shell without job control inherits SIGINT ignored, and a
# child started with it ignored keeps it so: the Ctrl-C tests' CLI would never see their SIGINT.
# A Python handler here becomes the default action in every child the tests start.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Nothing restarts in a stand-in container: the health check's settling wait (5 s by default) would
# only slow every deploy; the real_node tier sets it back to the product default.
os.environ.setdefault("PROXIMITY_HEALTH_SETTLE_SECONDS", "0")

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


@pytest.fixture(autouse=True)
def _archives_hold_standin_files(request: pytest.FixtureRequest) -> None:
    """A vzdump archive of the fake holds the stand-in container's files, as a real one holds the
    root filesystem: a restored app's compose project is there for the health check after it."""
    if "pve" in request.fixturenames and "standin_state" in request.fixturenames:
        pve = request.getfixturevalue("pve")
        state = request.getfixturevalue("standin_state")
        if pve.container_files is None:
            pve.container_files = lambda vmid: state.path / "ct" / str(vmid)
