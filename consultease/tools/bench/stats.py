"""The few statistics every benchmark reports: percentiles, spreads over rounds, and
publish-to-notification latency matched over every message sent."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; nan when empty.

    Nearest rank never invents a value: the result is always one of the samples.
    """
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, kw_only=True, slots=True)
class Spread:
    """One figure over several rounds: the median, and the lowest and highest round."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread:
        """Over the finite values (a round that could not measure it is left out)."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return cls(median=math.nan, low=math.nan, high=math.nan, rounds=0)
        return cls(
            median=statistics.median(finite), low=min(finite), high=max(finite), rounds=len(finite)
        )

    def as_json(self) -> dict[str, float | int | None]:
        def clean(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "median": clean(self.median),
            "low": clean(self.low),
            "high": clean(self.high),
            "rounds": self.rounds,
        }


Arrivals = Mapping[int, Sequence[tuple[int, float]]]
"""Per faculty id, the notifications seen as ``(desk_version, arrival time)``, in
arrival order (which is commit order, so desk versions grow)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Latencies:
    delays_ms: list[float]
    """One per message sent in the window that a notification covered, sorted."""
    undelivered: int
    """Messages sent in the window that no notification covered, and that the
    database does not hold either: lost, or not applied yet."""
    unchanged: int = 0
    """Messages the database holds (its desk version is theirs or newer) without a
    notification: coalesced in one batch with others of their desk into no visible
    change (the status ended where it began), so nobody had anything to be told."""

    @property
    def samples(self) -> int:
        return len(self.delays_ms)

    def p(self, fraction: float) -> float:
        return percentile(self.delays_ms, fraction)


def match_latencies(
    sent: Iterable[tuple[int, int, float]],
    arrivals: Arrivals,
    *,
    since: float = -math.inf,
    until: float = math.inf,
    committed: Mapping[int, int | None] | None = None,
) -> Latencies:
    """Publish-to-notification delay of every message sent in ``[since, until)``.

    A message of version *v* is shown once a notification for its row carries
    a desk version of *v* or more: when the ingest service writes a row once for
    several of its messages (coalescing), each of them is delivered by that one
    notification, at that moment. Every message sent counts, not only the
    survivors of coalescing. ``committed`` (faculty id -> desk version stored at
    the end) tells a message that changed nothing visible from a lost one.
    """
    versions = {faculty_id: [dv for dv, _ in seen] for faculty_id, seen in arrivals.items()}
    committed = committed or {}
    delays: list[float] = []
    undelivered = unchanged = 0
    for faculty_id, version, at in sent:
        if not since <= at < until:
            continue
        seen = arrivals.get(faculty_id, ())
        i = bisect.bisect_left(versions.get(faculty_id, []), version)
        if i < len(seen):
            delays.append(max(0.0, seen[i][1] - at) * 1000)
        elif (committed.get(faculty_id) or -1) >= version:
            unchanged += 1
        else:
            undelivered += 1
    delays.sort()
    return Latencies(delays_ms=delays, undelivered=undelivered, unchanged=unchanged)


def rate_in_window(times: Iterable[float], *, since: float, until: float) -> float:
    """Events per second with a time in ``[since, until)``, over that window."""
    if until <= since:
        return math.nan
    return sum(1 for t in times if since <= t < until) / (until - since)
