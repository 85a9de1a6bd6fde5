"""Test harness: real fakepve over HTTPS, a real OpenSSH sshd with a `pct` stand-in, real databases.

Fixtures live in tests/harness/*; each module lists its fixtures in __all__.
"""

import os

# Nothing restarts in a stand-in container: the health check's settling wait (5 s by default) would
# only slow every deploy; the real_node tier sets it back to the product default.
os.environ.setdefault("PROXIMITY_HEALTH_SETTLE_SECONDS", "0")

from tests.harness.db import *  # noqa: F403
from tests.harness.pve import *  # noqa: F403
from tests.harness.sshd import *  # noqa: F403
