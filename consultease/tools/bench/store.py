"""The store alone, A/B: CPU per applied update of ``Store.apply_batch``, in the
client process and in its PostgreSQL backend, batches of 500 distinct rows (as
realistic traffic gives: nothing coalesces), variants interleaved.

```sh
python -m consultease.tools.bench.store                         # pipeline on / off
python -m consultease.tools.bench.store --other base=/src/main  # beside another checkout's store
```

Each measurement is a fresh process (this file with ``--measure``) whose
``consultease`` comes from ``PYTHONPATH`` (this checkout, or another one's); CPU is read from
``getrusage`` and from ``/proc/<backend pid>/stat``, which machine load moves
far less than wall time. Uses ``CONSULTEASE_DATABASE_URL``'s server (a scratch
database it creates and drops), or the PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

from consultease.config import Settings

BATCH: Final = 500
STATUSES: Final = ("available", "busy", "away")
HERE: Final = str(Path(__file__).resolve().parents[3])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(database_url: str, batches: int, pipeline: bool) -> dict[str, float]:
    """Apply ``batches`` batches of ``BATCH`` status changes; µs per update."""
    import psycopg  # noqa: PLC0415

    from consultease.ingest.store import Store  # noqa: PLC0415  (PYTHONPATH's Store)
    from consultease.payloads import parse  # noqa: PLC0415

    with psycopg.connect(database_url) as conn:
        ids = [
            int(row[0])
            for row in conn.execute("SELECT id FROM faculty ORDER BY id LIMIT %s", (BATCH,))
        ]
        row = conn.execute("SELECT coalesce(max(desk_version), 0) FROM faculty").fetchone()
    base = int(row[0]) if row else 0
    now_ms = int(time.time() * 1000)

    def batch(k: int) -> list[Any]:
        version = base + k + 1
        return [
            parse(
                f"consultease/faculty/{i}/status",
                json.dumps(
                    {"status": STATUSES[(version + i) % 3], "version": version, "ts": now_ms}
                ).encode(),
            )
            for i in ids
        ]

    kwargs: dict[str, Any] = {"max_clock_skew": 300.0}
    if "pipeline" in inspect.signature(Store).parameters:
        kwargs["pipeline"] = pipeline
    store = Store(database_url, **kwargs)
    try:
        for k in range(6):  # connect, and past psycopg's prepare threshold (5)
            store.apply_batch(batch(k))
        pid = store._conn.info.backend_pid if store._conn else 0
        work = [batch(k) for k in range(6, 6 + batches)]
        c0, s0, t0 = _cpu(), _backend_cpu(pid), time.perf_counter()
        applied = sum(o.applied for b in work for o in store.apply_batch(b))
        c1, s1, t1 = _cpu(), _backend_cpu(pid), time.perf_counter()
    finally:
        store.close()
    if applied != batches * len(ids):
        raise SystemExit(f"applied {applied} of {batches * len(ids)}")
    scale = 1e6 / applied
    return {"client": (c1 - c0) * scale, "server": (s1 - s0) * scale, "wall": (t1 - t0) * scale}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m consultease.tools.bench.store")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40, help="measured batches a run")
    parser.add_argument(
        "--other", action="append", default=[], metavar="LABEL=CHECKOUT",
        help="also measure the Store of another checkout (its pipeline setting, if any, on)",
    )  # fmt: skip
    parser.add_argument(
        "--measure", nargs=3, metavar=("URL", "BATCHES", "PIPELINE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        url, batches, pipeline = args.measure
        print(json.dumps(measure(url, int(batches), pipeline == "on")))
        return 0

    from consultease.tools.bench.scratch import create_bench_rows, scratch_database  # noqa: PLC0415

    variants = {"pipeline on": (HERE, "on"), "pipeline off": (HERE, "off")}
    for other in args.other:
        label, _, path = other.partition("=")
        variants[label] = (path, "on")
    server = Settings.from_env().database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    with scratch_database(server) as url:
        create_bench_rows(url, BATCH)
        for r in range(args.rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                path, pipeline = variants[name]
                # -P: this file runs, but ``consultease`` comes from ``path`` alone.
                command = [sys.executable, "-P", __file__, "--measure", url, str(args.batches)]
                out = subprocess.run(
                    [*command, pipeline],
                    env={**os.environ, "PYTHONPATH": path},
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode:
                    print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
                    return 1
                results[name].append(json.loads(out.stdout))
    print(f"µs per applied update, batches of {BATCH}, {args.rounds} rounds: median [range]")
    for name, runs in results.items():
        cells = []
        for key in ("client", "server", "wall"):
            values = [run[key] for run in runs]
            cells.append(
                f"{key} {statistics.median(values):5.1f} [{min(values):.1f}–{max(values):.1f}]"
            )
        print(f"  {name:14s} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
