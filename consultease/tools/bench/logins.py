"""Admin logins: do unknown, wrong and locked answer alike, in the same time?

``python -m consultease.tools.bench.logins [--database-url URL] [--tries 50]``
times ``AdminAccounts.login`` (production argon2 settings) for an unknown
username, a wrong password and a locked account, interleaved round by round so
that load on a shared machine falls on all three alike, each try from a source of
its own (so the per-source back-off does not answer first). It prints every
answer seen, the median and the spread of each case, and the largest difference
between medians as a share of the smallest: the target is within 10%. It runs
in a scratch database it creates and drops.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter

from consultease.admin.accounts import AdminAccounts, LockoutPolicy
from consultease.config import Settings
from consultease.db.connection import connect
from consultease.errors import AuthenticationError, ConsultEaseError
from consultease.tools.bench.scratch import scratch_database

PASSWORD = secrets.token_urlsafe(18)
"""The bench admins' password, new every run."""
CASES = ("unknown", "wrong", "locked")
LOCK_AFTER = LockoutPolicy().max_failures


def _attempt(accounts: AdminAccounts, case: str) -> tuple[float, str]:
    username = {"unknown": "nobody-here", "wrong": "open-admin", "locked": "locked-admin"}[case]
    password = PASSWORD if case == "locked" else "not-the-password-at-all"
    started = time.perf_counter()
    try:
        accounts.login(username, password, source=f"bench-{uuid.uuid4().hex}")
    except AuthenticationError as exc:
        answer = str(exc)
    else:
        answer = "accepted"
    return (time.perf_counter() - started) * 1000, answer


def run(database_url: str, tries: int) -> int:
    timings: dict[str, list[float]] = {case: [] for case in CASES}
    answers: dict[str, Counter[str]] = {case: Counter() for case in CASES}
    with scratch_database(database_url) as url, AdminAccounts(url) as accounts:
        accounts.create("open-admin", PASSWORD, actor="bench")
        accounts.create("locked-admin", PASSWORD, actor="bench")
        for _ in range(LOCK_AFTER):  # lock "locked-admin"; warms up the connection too
            _attempt(accounts, "unknown")
            with contextlib.suppress(AuthenticationError):
                accounts.login(
                    "locked-admin", "wrong-on-purpose", source=f"lock-{uuid.uuid4().hex}"
                )
        for round_number in range(tries):
            order = CASES[round_number % 3 :] + CASES[: round_number % 3]
            for case in order:
                # Keep "open-admin" below its lock and "locked-admin" locked.
                if case == "wrong" and round_number % 4 == 3:
                    accounts.login("open-admin", PASSWORD, source="bench-reset")
                elapsed, answer = _attempt(accounts, case)
                timings[case].append(elapsed)
                answers[case][answer] += 1
            _keep_locked(url)
    medians = {case: statistics.median(values) for case, values in timings.items()}
    print(f"{tries} logins per case, production argon2, interleaved")
    print(f"{'case':8} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}  answers")
    for case in CASES:
        deciles = statistics.quantiles(timings[case], n=10)
        seen = "; ".join(f"{n} x {a!r}" for a, n in answers[case].items())
        print(f"{case:8} {medians[case]:10.1f} {deciles[0]:8.1f} {deciles[-1]:8.1f}  {seen}")
    spread = (max(medians.values()) - min(medians.values())) / min(medians.values())
    print(f"largest difference between medians: {spread:.1%} of the smallest (target: < 10%)")
    distinct = {a for counter in answers.values() for a in counter}
    print(f"distinct answers: {len(distinct)}")
    return 0 if spread < 0.10 and len(distinct) == 1 else 1


def _keep_locked(url: str) -> None:
    """Push the lock of "locked-admin" a minute on, so it never runs out mid-run."""
    with connect(url, application_name="consultease-bench") as conn, conn.transaction():
        conn.execute(
            "UPDATE admin_user SET locked_until = now() + interval '1 minute'"
            " WHERE username = 'locked-admin'"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consultease.tools.bench.logins")
    parser.add_argument("--database-url", help="server to make a scratch database on")
    parser.add_argument("--tries", type=int, default=50, help="logins per case (default 50)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    url = args.database_url or Settings.from_env().database_url
    if not url:
        print("error: give --database-url or set CONSULTEASE_DATABASE_URL", file=sys.stderr)
        return 2
    if args.tries < 10:
        print("error: --tries must be at least 10", file=sys.stderr)
        return 2
    try:
        return run(url, args.tries)
    except ConsultEaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
