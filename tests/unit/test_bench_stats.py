"""The bench's method, as pure functions: traffic shapes, latency over every message,
spreads over rounds, rates over their window, phase rotation, perf's output."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from consultease.tools.bench.cpu import _parse_instructions
from consultease.tools.bench.ingest import phase_order
from consultease.tools.bench.stats import Spread, match_latencies, percentile, rate_in_window
from consultease.tools.bench.traffic import Shape, next_status, order, payload


def test_percentile_is_nearest_rank_and_sorts_its_input() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_realistic_traffic_sends_one_message_per_desk_per_turn() -> None:
    ids = list(range(1, 2001))
    first = list(itertools.islice(order(ids, Shape.REALISTIC), 4500))
    assert first[:2000] == ids and first[2000:4000] == ids
    # Any 500 consecutive messages (a full batch) name 500 different desks.
    for start in range(0, 4000, 137):
        assert len(set(first[start : start + 500])) == 500


def test_flood_traffic_sends_bursts_of_one_desk() -> None:
    first = list(itertools.islice(order([7, 8, 9], Shape.FLOOD, burst=4), 14))
    assert first == [7] * 4 + [8] * 4 + [9] * 4 + [7] * 2


def test_every_message_of_a_desk_changes_its_status_and_is_the_current_format() -> None:
    for start in ("available", "busy", "away"):
        statuses = [start]
        for _ in range(6):
            statuses.append(next_status(statuses[-1]))
        assert all(a != b for a, b in itertools.pairwise(statuses)), statuses
    assert next_status("") in ("available", "busy", "away")
    message = json.loads(payload(42, "busy", 2**32 + 5, 1_700_000_000_000))
    assert message == {
        "status": "busy",
        "version": 2**32 + 5,
        "ts": 1_700_000_000_000,
        "desk_id": "bench-42",
    }


def test_latency_counts_every_message_a_later_write_covered() -> None:
    sent = [
        (1, 1, 10.0),  # coalesced: shown by the write of version 3
        (1, 2, 10.1),
        (1, 3, 10.2),
        (2, 1, 10.3),  # never notified
        (3, 5, 9.0),  # before the window
    ]
    arrivals = {1: [(3, 10.5)], 3: [(5, 9.1)]}
    found = match_latencies(sent, arrivals, since=9.5, until=11.0)
    assert found.delays_ms == pytest.approx([300.0, 400.0, 500.0])
    assert found.undelivered == 1
    assert found.samples == 3
    assert found.p(0.5) == pytest.approx(400.0)


def test_a_message_the_database_holds_without_a_notification_changed_nothing_visible() -> None:
    sent = [(1, 4, 1.0), (1, 5, 1.0), (1, 6, 1.0), (2, 9, 1.0)]
    found = match_latencies(sent, {1: [(3, 0.9)]}, committed={1: 6, 2: 8})
    assert found.unchanged == 3, "desk 1 holds version 6: applied, status back where it was"
    assert found.undelivered == 1, "desk 2 holds only version 8: version 9 never arrived"
    assert found.samples == 0


def test_latency_takes_the_first_notification_at_or_above_the_version() -> None:
    arrivals = {1: [(1, 1.0), (4, 2.0), (9, 3.0)]}
    sent = [(1, 1, 0.5), (1, 2, 0.5), (1, 4, 0.5), (1, 5, 0.5), (1, 10, 0.5)]
    found = match_latencies(sent, arrivals)
    assert found.delays_ms == pytest.approx([500.0, 1500.0, 1500.0, 2500.0])
    assert found.undelivered == 1


def test_spread_is_the_median_and_range_of_the_rounds_that_measured() -> None:
    spread = Spread.of([3.0, None, 1.0, math.nan, 10.0])
    assert (spread.median, spread.low, spread.high, spread.rounds) == (3.0, 1.0, 10.0, 3)
    empty = Spread.of([None])
    assert empty.rounds == 0 and math.isnan(empty.median)
    assert empty.as_json() == {"median": None, "low": None, "high": None, "rounds": 0}


def test_a_rate_is_taken_over_its_own_window() -> None:
    times = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0]
    assert rate_in_window(times, since=1.0, until=3.0) == 2.0  # 4 events in 2 s
    assert math.isnan(rate_in_window(times, since=3.0, until=3.0))


def test_phases_rotate_so_none_always_runs_first() -> None:
    orders = [phase_order(i) for i in range(3)]
    assert {o[0] for o in orders} == {"passthrough", "database", "service"}
    assert all(sorted(o) == sorted(orders[0]) for o in orders)


def test_perf_counts_are_read_and_unsupported_counters_are_none() -> None:
    assert _parse_instructions("1234567,,instructions,1000,100.00,,\n") == 1234567
    assert _parse_instructions("<not supported>,,instructions,0,100.00,,\n") is None
    assert _parse_instructions("0.47,msec,task-clock,469560,100.00,0.467,CPUs utilized\n") is None
