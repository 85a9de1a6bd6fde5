"""Benchmark: static addresses reserved by many threads at once (``reserve_address``).

On a fresh database of the machine's PostgreSQL (or SQLite with ``--database sqlite``), ``--threads``
threads per store each reserve one address of a /22 pool at the same moment (a barrier), as the
``reserve`` steps of a burst of deploys do; ``--stores`` stores on the one database stand for as
many agents. Measured ``--runs`` times each, in the same process:

- ``ours``: ``store.reservations.reserve_address`` as it is (threads of one store try distinct
  addresses; a collision with another store reads the held addresses again);
- ``naive``: the loop it replaced, for comparison: read the held addresses once, then try the
  lowest free one, then the next, until an insert succeeds.

For each: the inserts tried (one per address is the least), the wall time of the burst, and each
call's time (median, max). Every run checks that the addresses given are distinct.

Run from the repository root:  python bench/reservations.py [--stores 1,3] [--threads 16] [--runs 3]
Writes bench/results/reservations.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from proximity_sdk.models.settings import IPPool, parse_pool  # noqa: E402
from proximity_sdk.store import Store  # noqa: E402
from proximity_sdk.store.reservations_repo import ReservationsRepository  # noqa: E402
from tests.harness.db import create_pg_database, drop_pg_database  # noqa: E402

POOL = "10.20.0.0/22"


def naive(repo: ReservationsRepository, pool: IPPool, operation_id: str) -> str:
    """The loop ``reserve_address`` was before: one read of the held addresses, then the lowest
    free candidate, then the next, each an insert the table may refuse."""
    taken = repo.held_addresses()
    first, last = int(pool.first), int(pool.last)
    for value in range(first, last + 1):
        candidate = str(type(pool.first)(value))
        if candidate in taken:
            continue
        if repo.try_reserve_address(candidate, operation_id=operation_id):
            return candidate
    raise RuntimeError("pool exhausted")


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


def burst(kind: str, stores: int, threads: int, strategy: str) -> dict[str, Any]:
    with database(kind) as url, tempfile.TemporaryDirectory() as data:
        key = Fernet.generate_key()
        opened = [Store.open(url, data_dir=Path(data) / str(i), secret_key=key) for i in range(stores)]
        try:
            pool = parse_pool(POOL, None)
            ops = [opened[0].operations.create("deploy", steps=["reserve"]).id for _ in range(stores * threads)]
            tries = [0]
            count_lock = threading.Lock()
            for store in opened:
                repo = store.reservations
                plain = repo.try_reserve_address

                def counted(address: str, *, _plain: Callable[..., bool] = plain, **kwargs: Any) -> bool:
                    with count_lock:
                        tries[0] += 1
                    return _plain(address, **kwargs)

                repo.try_reserve_address = counted  # type: ignore[method-assign]
            start = threading.Barrier(len(ops))
            took: list[float] = []
            given: list[str] = []

            def one(i: int) -> None:
                repo = opened[i % stores].reservations
                start.wait()
                began = time.perf_counter()
                if strategy == "ours":
                    address = repo.reserve_address(pool, operation_id=ops[i])
                else:
                    address = naive(repo, pool, ops[i])
                took.append((time.perf_counter() - began) * 1000)
                given.append(address)

            workers = [threading.Thread(target=one, args=(i,)) for i in range(len(ops))]
            began = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(120)
            wall = (time.perf_counter() - began) * 1000
            assert len(given) == len(ops) and len(set(given)) == len(given), "addresses given twice or missing"
            return {
                "inserts": tries[0],
                "addresses": len(given),
                "wall_ms": round(wall, 1),
                "call_ms_median": round(statistics.median(took), 1),
                "call_ms_max": round(max(took), 1),
            }
        finally:
            for store in opened:
                store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="1,3", help="comma-separated store counts (agents)")
    parser.add_argument("--threads", type=int, default=16, help="threads per store (an agent's workers)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reservations.json"))
    args = parser.parse_args()
    rows = []
    print(f"{'stores x threads':<18}{'strategy':<10}{'inserts':>9}{'wall ms':>10}{'call med':>10}{'call max':>10}")
    for stores in (int(s) for s in args.stores.split(",")):
        for strategy in ("ours", "naive"):  # each burst on a database of its own
            samples = [burst(args.database, stores, args.threads, strategy) for _ in range(args.runs)]
            row = {
                "stores": stores,
                "threads_per_store": args.threads,
                "strategy": strategy,
                "samples": samples,
                "inserts_median": statistics.median(s["inserts"] for s in samples),
                "wall_ms_median": round(statistics.median(s["wall_ms"] for s in samples), 1),
                "call_ms_median": round(statistics.median(s["call_ms_median"] for s in samples), 1),
                "call_ms_max": max(s["call_ms_max"] for s in samples),
            }
            rows.append(row)
            print(
                f"{f'{stores} x {args.threads}':<18}{strategy:<10}{row['inserts_median']:>9}"
                f"{row['wall_ms_median']:>10}{row['call_ms_median']:>10}{row['call_ms_max']:>10}"
            )
    Path(args.out).write_text(
        json.dumps(
            {
                "bench": "reservations",
                "what": "static addresses reserved by threads of one or several stores at once",
                "command": "python bench/reservations.py " + " ".join(sys.argv[1:]),
                "database": args.database,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
