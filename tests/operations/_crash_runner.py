"""A second process for the crash tests: opens the test's database, submits a toy operation and
keeps running it until the parent kills it (SIGKILL: no cleanup, no finally, like a power cut).

    python -m tests.operations._crash_runner DATABASE_URL DATA_DIR KIND WORK_DIR LEASE_SECONDS
"""

from __future__ import annotations

import sys
import time

from proximity_sdk.engine.engine import OperationEngine
from proximity_sdk.store import Store
from tests.operations._toys import FileEffects, FinishesOnRecover


def main(url: str, data_dir: str, kind: str, work_dir: str, lease: str) -> None:
    store = Store.open(url, data_dir=data_dir)
    engine = OperationEngine(store, lease_seconds=float(lease))
    engine.register(FileEffects())
    engine.register(FinishesOnRecover())
    handle = engine.submit(kind, params={"dir": work_dir})
    print(handle.id, flush=True)
    while True:  # the operation blocks forever; the parent ends us
        time.sleep(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
